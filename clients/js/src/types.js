// The shapes of tokenpulse's answers, as JSDoc types (types/types.d.ts is generated from here).
// Field names are the API's own (snake_case), so a REST answer and a stream's state are the
// same object; market values are JSON numbers, times ISO 8601 strings in UTC ("…Z").
export {};

/**
 * Freshness carried by every value (SPEC §4.6).
 * @typedef {object} Freshness
 * @property {string | null} source The source that served the value (`kraken_ws`, `replay`, …).
 * @property {string | null} as_of The provider's own time of the value, or null.
 * @property {string} received_at When tokenpulse received it.
 * @property {number} age_ms Milliseconds since the value was last known current.
 * @property {boolean} stale `age_ms` is beyond the service's `STALE_AFTER`.
 */

/**
 * One last traded price (`GET /api/v1/ltp`, `ltp_update` state).
 * @typedef {Freshness & {
 *   pair: string,
 *   amount: number,
 *   timestamp?: string | null,
 *   bid?: number | null,
 *   ask?: number | null,
 *   volume_24h?: number | null,
 *   vwap?: number | null,
 *   [field: string]: unknown,
 * }} Price
 */

/**
 * Why one requested pair has no price (in a 206 answer).
 * @typedef {object} PairError
 * @property {string} pair
 * @property {string} code `UNSUPPORTED_PAIR`, `PRICE_FETCH_ERROR`, `STALE_DATA`…
 * @property {string} message
 */

/**
 * A supported pair (`GET /api/v1/pairs`): provider names, the serving source and, when
 * several venues are enabled, the aggregate price.
 * @typedef {{
 *   pair: string,
 *   base: string,
 *   quote: string,
 *   providers: Record<string, Record<string, string>>,
 *   serving_source: string | null,
 *   aggregate: Record<string, unknown> | null,
 *   [field: string]: unknown,
 * }} PairInfo
 */

/**
 * One source's health (`GET /api/v1/sources`).
 * @typedef {{
 *   name: string,
 *   kind: string,
 *   connected: boolean,
 *   state: string,
 *   detail?: string,
 *   last_message_at: string | null,
 *   last_message_age_ms: number | null,
 *   messages?: number,
 *   error_count: number,
 *   last_error: string | null,
 *   role?: string,
 *   serving?: string[],
 *   [field: string]: unknown,
 * }} SourceHealth
 */

/**
 * `GET /api/v1/sources`: every source, who serves each pair and why, the market-data source.
 * @typedef {{
 *   sources: SourceHealth[],
 *   pairs: Record<string, {source: string | null, reason: string, since?: string | null}>,
 *   market?: (SourceHealth & {tokens?: number}) | null,
 *   role?: string,
 *   [field: string]: unknown,
 * }} SourcesReport
 */

/**
 * `GET /health`.
 * @typedef {{status: string, timestamp: string, [field: string]: unknown}} Health
 */

/**
 * `GET /ready`: `ready` is false on a 503 (the body says which dependency fails).
 * @typedef {{
 *   ready: boolean,
 *   status: string,
 *   services: Record<string, unknown>,
 *   errors?: unknown[],
 *   [field: string]: unknown,
 * }} Readiness
 */

/**
 * A velocity trend over one window (1h, 4h, 12h, 7d); nulls with a `reason` without history.
 * @typedef {object} Trend
 * @property {number | null} change_pct
 * @property {"increasing" | "decreasing" | "stable" | null} direction
 * @property {number | null} mean
 * @property {number | null} [reference_velocity]
 * @property {string | null} [reference_at]
 * @property {string | null} reason `insufficient_history` when there is no trend yet.
 */

/**
 * A token snapshot (`GET /api/v1/tokens`, `token_update` state).
 * @typedef {Freshness & {
 *   id: string,
 *   symbol: string,
 *   name: string,
 *   cmc_id: number | null,
 *   coingecko_id: string | null,
 *   rank: number | null,
 *   price_usd: number | null,
 *   market_cap_usd: number | null,
 *   volume_24h_usd: number | null,
 *   circulating_supply: number | null,
 *   total_supply: number | null,
 *   max_supply: number | null,
 *   percent_change_1h: number | null,
 *   percent_change_24h: number | null,
 *   percent_change_7d: number | null,
 *   velocity: number | null,
 *   quality: {flags: string[], [field: string]: unknown},
 *   [field: string]: unknown,
 * }} Token
 */

/**
 * One token with its velocity trends (`GET /api/v1/tokens/{id}`); `history` with `history=`.
 * @typedef {Token & {
 *   trends: Record<string, Trend>,
 *   history?: {granularity: string, fields: string[], points: unknown[][]},
 * }} TokenDetail
 */

/**
 * Pagination of `GET /api/v1/tokens`; `next` is the cursor of the next page, or null.
 * @typedef {object} Pagination
 * @property {number} total
 * @property {number} limit
 * @property {number} start
 * @property {string | null} next
 */

/**
 * One page of tokens.
 * @typedef {object} TokenPage
 * @property {Token[]} tokens
 * @property {Pagination} pagination
 * @property {Record<string, unknown>} meta
 */

/**
 * `GET /api/v1/tokens/{id}/velocity`.
 * @typedef {{
 *   id: string,
 *   symbol: string,
 *   velocity: number | null,
 *   formula: string,
 *   inputs: Record<string, number | null>,
 *   flags: string[],
 *   trends: Record<string, Trend>,
 *   window: {window: string, granularity: string, points: [string, number | null][]},
 *   source: string | null,
 *   as_of: string | null,
 *   age_ms: number,
 *   stale: boolean,
 *   [field: string]: unknown,
 * }} Velocity
 */

/**
 * One history point: `t` and the requested fields (`open`, `high`, `low`, `close`,
 * `market_cap`, `volume_24h`, `velocity`, `samples`…).
 * @typedef {{t: string, [field: string]: number | string | null}} HistoryPoint
 */

/**
 * `GET /api/v1/tokens/{id}/history`; `gaps` are the stretches of the range without data.
 * @typedef {object} History
 * @property {string} id
 * @property {string} from
 * @property {string} to
 * @property {string} granularity
 * @property {HistoryPoint[]} points
 * @property {number} count
 * @property {{from: string, to: string}[]} gaps
 */

/**
 * `POST /api/v1/ltp/refresh`.
 * @typedef {{message: string, pairs: string[], [field: string]: unknown}} RefreshResult
 */

/**
 * A session token (`POST /api/v1/sessions`, SPEC §8.4) for stream handshakes.
 * @typedef {object} Session
 * @property {string} token
 * @property {Date | null} expiresAt
 * @property {Record<string, unknown>} raw The whole answer.
 */

/**
 * A stream update of a pair: `state` is the whole price after this message.
 * @typedef {object} PairUpdate
 * @property {"pair"} kind
 * @property {string} id The pair (`BTC/USD`).
 * @property {"snapshot" | "delta"} type A snapshot after each (re)subscription, then deltas.
 * @property {number} seq Per key, increasing.
 * @property {number | null} ts The server's send time, ms since the epoch.
 * @property {Partial<Price>} changes The fields this message changed (all, for a snapshot).
 * @property {Price} state
 */

/**
 * A stream update of a token: `state` is the whole snapshot after this message.
 * @typedef {object} TokenUpdate
 * @property {"token"} kind
 * @property {string} id The token id (`bitcoin`).
 * @property {"snapshot" | "delta"} type
 * @property {number} seq
 * @property {number | null} ts
 * @property {Partial<Token>} changes
 * @property {Token} state
 */

/** @typedef {PairUpdate | TokenUpdate} Update */

/**
 * Where a stream is: `connecting` (first attempt), `open`, `reconnecting` (after a loss,
 * waiting out the backoff), `closed` (by `close()` or for good after a refusal).
 * @typedef {"connecting" | "open" | "reconnecting" | "closed"} StreamStatus
 */
