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
export const DEFAULT_BASE_URL: "http://127.0.0.1:8080";
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
    constructor(prices: Price[], errors: PairError[]);
    /** @readonly */ readonly prices: import("./types.js").Price[];
    /** @readonly */ readonly errors: import("./types.js").PairError[];
    /**
     * The price of `pair` (canonical `BASE/QUOTE`), or undefined.
     * @param {string} pair
     * @returns {Price | undefined}
     */
    get(pair: string): Price | undefined;
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
    constructor(baseUrl?: string, options?: ClientOptions);
    /** @readonly */ readonly baseUrl: string;
    /** @readonly */ readonly apiKey: string | null;
    /** @type {string | null} */ sessionToken: string | null;
    timeoutMs: number;
    retries: number;
    maxRetryDelayMs: number;
    /** @private */ private _fetch;
    /** @private */ private _headers;
    /**
     * The full URL of `path` with `params` (undefined values left out).
     * @param {string} path
     * @param {Record<string, string | undefined>} [params]
     */
    url(path: string, params?: Record<string, string | undefined>): string;
    /**
     * Send one request; the parsed JSON of an answer whose status is in `ok`, else an ApiError.
     * 429 and 503 are retried `retries` times after their `Retry-After`.
     * @param {string} method
     * @param {string} path
     * @param {{params?: Record<string, string | undefined>, ok?: number[], signal?: AbortSignal}} [options]
     * @returns {Promise<{status: number, body: any}>}
     */
    request(method: string, path: string, { params, ok, signal }?: {
        params?: Record<string, string | undefined>;
        ok?: number[];
        signal?: AbortSignal;
    }): Promise<{
        status: number;
        body: any;
    }>;
    /**
     * Last traded prices of `pairs` (any spelling), or of every supported pair.
     * @param {string | string[]} [pairs]
     * @param {{maxAgeMs?: number, source?: string, signal?: AbortSignal}} [options]
     * @returns {Promise<LtpResult>}
     */
    ltp(pairs?: string | string[], { maxAgeMs, source, signal }?: {
        maxAgeMs?: number;
        source?: string;
        signal?: AbortSignal;
    }): Promise<LtpResult>;
    /**
     * Everything in the price cache, same shape as {@link ltp}.
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<LtpResult>}
     */
    cached({ signal }?: {
        signal?: AbortSignal;
    }): Promise<LtpResult>;
    /**
     * Force a REST fetch of `pairs` (every supported pair without); a failure throws
     * `ServerError` (502 `PRICE_FETCH_ERROR`, failing pairs in `body.errors`).
     * @param {string | string[]} [pairs]
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<RefreshResult>}
     */
    refresh(pairs?: string | string[], { signal }?: {
        signal?: AbortSignal;
    }): Promise<RefreshResult>;
    /**
     * The supported pairs, their provider names and (with several venues) the aggregate.
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<PairInfo[]>}
     */
    pairs({ signal }?: {
        signal?: AbortSignal;
    }): Promise<PairInfo[]>;
    /**
     * Each source's state and which one serves each pair, and why.
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<SourcesReport>}
     */
    sources({ signal }?: {
        signal?: AbortSignal;
    }): Promise<SourcesReport>;
    /**
     * Liveness (`GET /health`).
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<Health>}
     */
    health({ signal }?: {
        signal?: AbortSignal;
    }): Promise<Health>;
    /**
     * Readiness (`GET /ready`): a 503 is an answer here (`ready: false`), not an error.
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<Readiness>}
     */
    ready({ signal }?: {
        signal?: AbortSignal;
    }): Promise<Readiness>;
    /**
     * One page of tracked tokens.
     * @param {TokenQuery} [params]
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<TokenPage>}
     */
    tokens(params?: TokenQuery, { signal }?: {
        signal?: AbortSignal;
    }): Promise<TokenPage>;
    /**
     * Every token matching `params`, page after page (following `pagination.next`).
     * @param {Omit<TokenQuery, "cursor" | "start">} [params]
     * @param {{signal?: AbortSignal}} [options]
     * @returns {AsyncGenerator<Token, void, undefined>}
     */
    iterTokens(params?: Omit<TokenQuery, "cursor" | "start">, { signal }?: {
        signal?: AbortSignal;
    }): AsyncGenerator<Token, void, undefined>;
    /**
     * One token by id, CMC id, CoinGecko id or symbol, with its velocity trends.
     * @param {string} tokenId
     * @param {{history?: string, detail?: "basic" | "full", maxAgeMs?: number, signal?: AbortSignal}} [options]
     * @returns {Promise<TokenDetail>}
     */
    token(tokenId: string, { history, detail, maxAgeMs, signal }?: {
        history?: string;
        detail?: "basic" | "full";
        maxAgeMs?: number;
        signal?: AbortSignal;
    }): Promise<TokenDetail>;
    /**
     * A token's velocity: formula, inputs, trends over 1h/4h/12h/7d and a `window` series.
     * @param {string} tokenId
     * @param {{maxAgeMs?: number, signal?: AbortSignal}} [options]
     * @returns {Promise<Velocity>}
     */
    velocity(tokenId: string, { maxAgeMs, signal }?: {
        maxAgeMs?: number;
        signal?: AbortSignal;
    }): Promise<Velocity>;
    /**
     * A token's history between `from` and `to` (at most 10 000 points).
     * @param {string} tokenId
     * @param {HistoryQuery} [params]
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<History>}
     */
    history(tokenId: string, params?: HistoryQuery, { signal }?: {
        signal?: AbortSignal;
    }): Promise<History>;
    /**
     * Exchange the API key for a short-lived session token (SPEC §8.4), kept for {@link stream}.
     * Throws `NotFound` on a service without session tokens.
     * @param {{signal?: AbortSignal}} [options]
     * @returns {Promise<Session>}
     */
    createSession({ signal }?: {
        signal?: AbortSignal;
    }): Promise<Session>;
    /**
     * Live updates of pairs and tokens, merged into full state; reconnects, resubscribes and
     * refetches a snapshot after a `seq` gap by itself. Iterate it (`for await`), or listen
     * with `stream.on("update", …)`; `stream.close()` ends it.
     * @param {StreamOptions} options
     * @returns {Stream}
     */
    stream(options: StreamOptions): Stream;
}
export type Price = import("./types.js").Price;
export type PairError = import("./types.js").PairError;
export type PairInfo = import("./types.js").PairInfo;
export type SourcesReport = import("./types.js").SourcesReport;
export type Health = import("./types.js").Health;
export type Readiness = import("./types.js").Readiness;
export type Token = import("./types.js").Token;
export type TokenDetail = import("./types.js").TokenDetail;
export type TokenPage = import("./types.js").TokenPage;
export type Velocity = import("./types.js").Velocity;
export type History = import("./types.js").History;
export type RefreshResult = import("./types.js").RefreshResult;
export type Session = import("./types.js").Session;
export type StreamOptions = import("./stream.js").StreamOptions;
export type ClientOptions = {
    /**
     * Sent as `X-API-Key` (and to streams) when auth is on.
     */
    apiKey?: string | undefined;
    /**
     * A session token (SPEC §8.4) for streams: Socket.IO `auth.token`,
     * SSE `?token=`. REST calls still need `apiKey`.
     */
    sessionToken?: string | undefined;
    /**
     * Per request.
     */
    timeoutMs?: number | undefined;
    /**
     * Retries of a 429 or 503 answer, each after its `Retry-After`.
     */
    retries?: number | undefined;
    /**
     * A `Retry-After` longer than this is not waited
     * for: the error is thrown.
     */
    maxRetryDelayMs?: number | undefined;
    /**
     * The fetch to use (default: the global one).
     */
    fetch?: typeof fetch | undefined;
    /**
     * Extra headers on every request.
     */
    headers?: Record<string, string> | undefined;
};
/**
 * The parameters of {@link TokenpulseClient.tokens} (camelCase for the API's snake_case).
 */
export type TokenQuery = {
    /**
     * 1–500, default 100.
     */
    limit?: number | undefined;
    /**
     * 1-based position.
     */
    start?: number | undefined;
    /**
     * `pagination.next` of the previous page.
     */
    cursor?: string | undefined;
    minMarketCap?: number | undefined;
    maxMarketCap?: number | undefined;
    minVelocity?: number | undefined;
    maxVelocity?: number | undefined;
    symbols?: string | string[] | undefined;
    sort?: "volume_24h" | "rank" | "percent_change_24h" | "velocity" | "market_cap" | "price" | undefined;
    order?: "desc" | "asc" | undefined;
    detail?: "basic" | "full" | undefined;
    /**
     * 503 `StaleData` instead of an older value.
     */
    maxAgeMs?: number | undefined;
};
/**
 * The parameters of {@link TokenpulseClient.history}.
 */
export type HistoryQuery = {
    /**
     * A Date, ISO 8601, or unix seconds.
     */
    from?: string | number | Date | undefined;
    to?: string | number | Date | undefined;
    /**
     * Default: from the range.
     */
    granularity?: "raw" | "1m" | "5m" | "15m" | "1h" | "4h" | "1d" | undefined;
    /**
     * e.g. `["close", "velocity"]`.
     */
    fields?: string | string[] | undefined;
};
import { Stream } from "./stream.js";
