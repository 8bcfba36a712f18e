// REST calls of tokenpulse (mirroring the Python client) and the entry to live streams.

import { errorFromResponse, NetworkError, RateLimited, StaleData, Unavailable } from "./errors.js";
import { Stream } from "./stream.js";

/** @typedef {import("./types.js").Price} Price */
/** @typedef {import("./types.js").PairError} PairError */
/** @typedef {import("./types.js").PairInfo} PairInfo */
/** @typedef {import("./types.js").SourcesReport} SourcesReport */
/** @typedef {import("./types.js").Health} Health */
/** @typedef {import("./types.js").Readiness} Readiness */
/** @typedef {import("./types.js").Token} Token */
/** @typedef {import("./types.js").TokenDetail} TokenDetail */
/** @typedef {import("./types.js").TokenPage} TokenPage */
/** @typedef {import("./types.js").Velocity} Velocity */
/** @typedef {import("./types.js").History} History */
/** @typedef {import("./types.js").RefreshResult} RefreshResult */
/** @typedef {import("./types.js").Session} Session */
/** @typedef {import("./stream.js").StreamOptions} StreamOptions */

export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;

/**
 * @typedef {object} ClientOptions
 * @property {string} [apiKey] Sent as `X-API-Key` (and to streams) when auth is on.
 * @property {string} [sessionToken] A session token (SPEC §8.4) for streams: Socket.IO `auth.token`,
 *   SSE `?token=`. REST calls still need `apiKey`.
 * @property {number} [timeoutMs=10000] Per request.
 * @property {number} [retries=0] Retries of a 429 or 503 answer, each after its `Retry-After`.
 * @property {number} [maxRetryDelayMs=30000] A `Retry-After` longer than this is not waited
 *   for: the error is thrown.
 * @property {typeof fetch} [fetch] The fetch to use (default: the global one).
 * @property {Record<string, string>} [headers] Extra headers on every request.
 */

/**
 * Last traded prices in request order, and the pairs that failed (a 206 answer).
 */
export class LtpResult {
  /**
   * @param {Price[]} prices
   * @param {PairError[]} errors
   */
  constructor(prices, errors) {
    /** @readonly */ this.prices = prices;
    /** @readonly */ this.errors = errors;
  }

  /**
   * The price of `pair` (canonical `BASE/QUOTE`), or undefined.
   * @param {string} pair
   * @returns {Price | undefined}
   */
  get(pair) {
    return this.prices.find((price) => price.pair === pair);
  }
}

/**
 * The parameters of {@link TokenpulseClient.tokens} (camelCase for the API's snake_case).
 * @typedef {object} TokenQuery
 * @property {number} [limit] 1–500, default 100.
 * @property {number} [start] 1-based position.
 * @property {string} [cursor] `pagination.next` of the previous page.
 * @property {number} [minMarketCap]
 * @property {number} [maxMarketCap]
 * @property {number} [minVelocity]
 * @property {number} [maxVelocity]
 * @property {string | string[]} [symbols]
 * @property {"market_cap" | "volume_24h" | "velocity" | "price" | "percent_change_24h" | "rank"} [sort]
 * @property {"asc" | "desc"} [order]
 * @property {"basic" | "full"} [detail]
 * @property {number} [maxAgeMs] 503 `StaleData` instead of an older value.
 */

/**
 * The parameters of {@link TokenpulseClient.history}.
 * @typedef {object} HistoryQuery
 * @property {Date | string | number} [from] A Date, ISO 8601, or unix seconds.
 * @property {Date | string | number} [to]
 * @property {"raw" | "1m" | "5m" | "15m" | "1h" | "4h" | "1d"} [granularity] Default: from the range.
 * @property {string | string[]} [fields] e.g. `["close", "velocity"]`.
 */

/** @type {Record<string, string>} */
const TOKEN_QUERY = {
  limit: "limit",
  start: "start",
  cursor: "cursor",
  minMarketCap: "min_market_cap",
  maxMarketCap: "max_market_cap",
  minVelocity: "min_velocity",
  maxVelocity: "max_velocity",
  symbols: "symbols",
  sort: "sort",
  order: "order",
  detail: "detail",
  maxAgeMs: "max_age_ms",
};
const HISTORY_QUERY = { from: "from", to: "to", granularity: "granularity", fields: "fields" };

/**
 * The API's query from typed parameters; an unknown name is a TypeError, not silently dropped.
 * @param {Record<string, unknown>} params
 * @param {Record<string, string>} names
 * @returns {Record<string, string>}
 */
function query(params, names) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, value] of Object.entries(params)) {
    const wire = names[name];
    if (wire === undefined) {
      throw new TypeError(`unknown parameter ${JSON.stringify(name)}; known: ${Object.keys(names).join(", ")}`);
    }
    if (value === undefined || value === null) continue;
    out[wire] = Array.isArray(value) ? value.join(",") : value instanceof Date ? value.toISOString() : String(value);
  }
  return out;
}

/** @param {string | string[] | undefined} value */
function csv(value) {
  return value === undefined ? undefined : Array.isArray(value) ? value.join(",") : value;
}

/** @param {number} ms @param {AbortSignal} [signal] */
function delay(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve(undefined)), { once: true });
  });
}

/**
 * A tokenpulse client: `new TokenpulseClient("http://127.0.0.1:8080", { apiKey })`.
 * Every call returns the API's own objects, typed; an error answer throws an
 * {@link ApiError} subclass (`RateLimited`, `NotFound`, `Unauthorized`, `StaleData`, …).
 */
export class TokenpulseClient {
  /**
   * @param {string} [baseUrl] Default: the page's origin in a browser, else http://127.0.0.1:8080.
   * @param {ClientOptions} [options]
   */
  constructor(baseUrl, options = {}) {
    const origin = /** @type {{location?: {origin?: string}}} */ (globalThis).location?.origin;
    const base = baseUrl ?? (origin && origin !== "null" ? origin : DEFAULT_BASE_URL);
    /** @readonly */ this.baseUrl = base.replace(/\/+$/, "");
    /** @readonly */ this.apiKey = options.apiKey ?? null;
    /** @type {string | null} */ this.sessionToken = options.sessionToken ?? null;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? 0;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
    /** @private */ this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @private */ this._headers = { Accept: "application/json", ...(options.headers ?? {}) };
  }

  /**
   * The full URL of `path` with `params` (undefined values left out).
   * @param {string} path
   * @param {Record<string, string | undefined>} [params]
   */
  url(path, params = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    return url.toString();
  }

  /**
   * Send one request; the parsed JSON of an answer whose status is in `ok`, else an ApiError.
   * 429 and 503 are retried `retries` times after their `Retry-After`.
   * @param {string} method
   * @param {string} path
   * @param {{params?: Record<string, string | undefined>, ok?: number[], signal?: AbortSignal}} [options]
   * @returns {Promise<{status: number, body: any}>}
   */
  async request(method, path, { params, ok = [200], signal } = {}) {
    /** @type {Record<string, string>} */
    const headers = { ...this._headers };
    if (this.apiKey) headers["X-API-Key"] = this.apiKey;
    const url = this.url(path, params);
    for (let attempt = 0; ; attempt += 1) {
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      /** @type {Response} */
      let response;
      /** @type {unknown} */
      let body;
      try {
        response = await this._fetch(url, { method, headers, signal: combined });
        const text = await response.text();
        body = text ? JSON.parse(text) : null;
      } catch (error) {
        if (signal?.aborted) throw error;
        const timedOut = timeout.aborted;
        const why = timedOut ? `no answer within ${this.timeoutMs} ms` : String(error);
        throw new NetworkError(`${method} ${url}: ${why}`, { cause: error, timedOut });
      }
      if (ok.includes(response.status)) return { status: response.status, body };
      const error = errorFromResponse(response.status, body, response.headers, response.statusText);
      const retryable = error instanceof RateLimited || error instanceof StaleData || error instanceof Unavailable;
      const wait = (error.retryAfter ?? 1) * 1000;
      if (!retryable || attempt >= this.retries || wait > this.maxRetryDelayMs) throw error;
      await delay(wait, signal);
    }
  }

  /**
   * Last traded prices of `pairs` (any spelling), or of every supported pair.
   * @param {string | string[]} [pairs]
   * @param {{maxAgeMs?: number, source?: string, signal?: AbortSignal}} [options]
   * @returns {Promise<LtpResult>}
   */
  async ltp(pairs, { maxAgeMs, source, signal } = {}) {
    const params = { pair: csv(pairs), max_age_ms: maxAgeMs?.toString(), source };
    const { body } = await this.request("GET", "/api/v1/ltp", { params, ok: [200, 206], signal });
    return ltpResult(body);
  }

  /**
   * Everything in the price cache, same shape as {@link ltp}.
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<LtpResult>}
   */
  async cached({ signal } = {}) {
    const { body } = await this.request("GET", "/api/v1/ltp/cached", { ok: [200, 206], signal });
    return ltpResult(body);
  }

  /**
   * Force a REST fetch of `pairs` (every supported pair without); a failure throws
   * `ServerError` (502 `PRICE_FETCH_ERROR`, failing pairs in `body.errors`).
   * @param {string | string[]} [pairs]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<RefreshResult>}
   */
  async refresh(pairs, { signal } = {}) {
    const params = { pairs: csv(pairs) };
    return (await this.request("POST", "/api/v1/ltp/refresh", { params, signal })).body;
  }

  /**
   * The supported pairs, their provider names and (with several venues) the aggregate.
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<PairInfo[]>}
   */
  async pairs({ signal } = {}) {
    return (await this.request("GET", "/api/v1/pairs", { signal })).body.data;
  }

  /**
   * Each source's state and which one serves each pair, and why.
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<SourcesReport>}
   */
  async sources({ signal } = {}) {
    return (await this.request("GET", "/api/v1/sources", { signal })).body.data;
  }

  /**
   * Liveness (`GET /health`).
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Health>}
   */
  async health({ signal } = {}) {
    return (await this.request("GET", "/health", { signal })).body;
  }

  /**
   * Readiness (`GET /ready`): a 503 is an answer here (`ready: false`), not an error.
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Readiness>}
   */
  async ready({ signal } = {}) {
    const { status, body } = await this.request("GET", "/ready", { ok: [200, 503], signal });
    return { ...body, ready: status === 200 };
  }

  /**
   * One page of tracked tokens.
   * @param {TokenQuery} [params]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<TokenPage>}
   */
  async tokens(params = {}, { signal } = {}) {
    const wire = query(/** @type {Record<string, unknown>} */ (params), TOKEN_QUERY);
    const { body } = await this.request("GET", "/api/v1/tokens", { params: wire, signal });
    return { tokens: body.data, pagination: body.pagination, meta: body.meta ?? {} };
  }

  /**
   * Every token matching `params`, page after page (following `pagination.next`).
   * @param {Omit<TokenQuery, "cursor" | "start">} [params]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {AsyncGenerator<Token, void, undefined>}
   */
  async *iterTokens(params = {}, { signal } = {}) {
    /** @type {string | undefined} */
    let cursor;
    do {
      const page = await this.tokens({ ...params, cursor }, { signal });
      yield* page.tokens;
      cursor = page.pagination?.next ?? undefined;
    } while (cursor);
  }

  /**
   * One token by id, CMC id, CoinGecko id or symbol, with its velocity trends.
   * @param {string} tokenId
   * @param {{history?: string, detail?: "basic" | "full", maxAgeMs?: number, signal?: AbortSignal}} [options]
   * @returns {Promise<TokenDetail>}
   */
  async token(tokenId, { history, detail, maxAgeMs, signal } = {}) {
    const params = { history, detail, max_age_ms: maxAgeMs?.toString() };
    const path = `/api/v1/tokens/${encodeURIComponent(tokenId)}`;
    return (await this.request("GET", path, { params, signal })).body.data;
  }

  /**
   * A token's velocity: formula, inputs, trends over 1h/4h/12h/7d and a `window` series.
   * @param {string} tokenId
   * @param {{maxAgeMs?: number, signal?: AbortSignal}} [options]
   * @returns {Promise<Velocity>}
   */
  async velocity(tokenId, { maxAgeMs, signal } = {}) {
    const params = { max_age_ms: maxAgeMs?.toString() };
    const path = `/api/v1/tokens/${encodeURIComponent(tokenId)}/velocity`;
    return (await this.request("GET", path, { params, signal })).body.data;
  }

  /**
   * A token's history between `from` and `to` (at most 10 000 points).
   * @param {string} tokenId
   * @param {HistoryQuery} [params]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<History>}
   */
  async history(tokenId, params = {}, { signal } = {}) {
    const wire = query(/** @type {Record<string, unknown>} */ (params), HISTORY_QUERY);
    const path = `/api/v1/tokens/${encodeURIComponent(tokenId)}/history`;
    return (await this.request("GET", path, { params: wire, signal })).body.data;
  }

  /**
   * Exchange the API key for a short-lived session token (SPEC §8.4), kept for {@link stream}.
   * Throws `NotFound` on a service without session tokens.
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Session>}
   */
  async createSession({ signal } = {}) {
    const { body } = await this.request("POST", "/api/v1/sessions", { ok: [200, 201], signal });
    const data = body?.data ?? body ?? {};
    const token = data.token ?? data.access_token;
    if (typeof token !== "string") throw new TypeError("the session answer carries no token");
    const expires = data.expires_at ?? null;
    this.sessionToken = token;
    return { token, expiresAt: typeof expires === "string" ? new Date(expires) : null, raw: data };
  }

  /**
   * Live updates of pairs and tokens, merged into full state; reconnects, resubscribes and
   * refetches a snapshot after a `seq` gap by itself. Iterate it (`for await`), or listen
   * with `stream.on("update", …)`; `stream.close()` ends it.
   * @param {StreamOptions} options
   * @returns {Stream}
   */
  stream(options) {
    return new Stream(
      { baseUrl: this.baseUrl, apiKey: this.apiKey, token: this.sessionToken, fetch: this._fetch },
      options,
    );
  }
}

/** @param {any} body @returns {LtpResult} */
function ltpResult(body) {
  const errors = (body?.errors ?? []).map(
    /** @param {any} e @returns {PairError} */
    (e) => ({ pair: String(e.pair), code: String(e.code ?? e.error), message: String(e.message) }),
  );
  return new LtpResult(body?.ltp ?? [], errors);
}
