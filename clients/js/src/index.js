// @tokenpulse/client: typed REST calls and live streams of a tokenpulse service.
//
//   import { TokenpulseClient } from "@tokenpulse/client";
//   const client = new TokenpulseClient("http://127.0.0.1:8080", { apiKey });
//   const { prices } = await client.ltp(["BTC/USD"]);
//   for await (const update of client.stream({ pairs: ["BTC/USD"] })) console.log(update.state.amount);

export { DEFAULT_BASE_URL, LtpResult, TokenpulseClient } from "./client.js";
export {
  ApiError,
  BadRequest,
  Conflict,
  Forbidden,
  NetworkError,
  NotFound,
  RateLimited,
  ServerError,
  StaleData,
  StreamError,
  TokenpulseError,
  Unauthorized,
  Unavailable,
} from "./errors.js";
export { Stream } from "./stream.js";
export { GAP, Tracker } from "./tracker.js";

/** @typedef {import("./client.js").ClientOptions} ClientOptions */
/** @typedef {import("./client.js").TokenQuery} TokenQuery */
/** @typedef {import("./client.js").HistoryQuery} HistoryQuery */
/** @typedef {import("./stream.js").StreamOptions} StreamOptions */
/** @typedef {import("./stream.js").StreamEvents} StreamEvents */
/** @typedef {import("./types.js").Freshness} Freshness */
/** @typedef {import("./types.js").Price} Price */
/** @typedef {import("./types.js").PairError} PairError */
/** @typedef {import("./types.js").PairInfo} PairInfo */
/** @typedef {import("./types.js").SourceHealth} SourceHealth */
/** @typedef {import("./types.js").SourcesReport} SourcesReport */
/** @typedef {import("./types.js").Health} Health */
/** @typedef {import("./types.js").Readiness} Readiness */
/** @typedef {import("./types.js").Trend} Trend */
/** @typedef {import("./types.js").Token} Token */
/** @typedef {import("./types.js").TokenDetail} TokenDetail */
/** @typedef {import("./types.js").Pagination} Pagination */
/** @typedef {import("./types.js").TokenPage} TokenPage */
/** @typedef {import("./types.js").Velocity} Velocity */
/** @typedef {import("./types.js").HistoryPoint} HistoryPoint */
/** @typedef {import("./types.js").History} History */
/** @typedef {import("./types.js").RefreshResult} RefreshResult */
/** @typedef {import("./types.js").Session} Session */
/** @typedef {import("./types.js").PairUpdate} PairUpdate */
/** @typedef {import("./types.js").TokenUpdate} TokenUpdate */
/** @typedef {import("./types.js").Update} Update */
/** @typedef {import("./types.js").StreamStatus} StreamStatus */
