/**
 * Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), else null.
 * @param {string | null} value
 * @param {number} [now] ms since the epoch
 * @returns {number | null}
 */
export function parseRetryAfter(value: string | null, now?: number): number | null;
/**
 * The code and message of an error body: the standard model `{error: {code, message}}` or the
 * LTP paths' flat `{error: "<CODE>", message}`.
 * @param {unknown} body
 * @param {string} fallbackCode
 * @param {string} fallbackMessage
 * @returns {[string, string]}
 */
export function errorCodeOf(body: unknown, fallbackCode: string, fallbackMessage: string): [string, string];
/**
 * The error for an answer with status `status` and parsed `body`.
 * @param {number} status
 * @param {unknown} body
 * @param {{get(name: string): string | null}} headers
 * @param {string} [statusText]
 * @returns {ApiError}
 */
export function errorFromResponse(status: number, body: unknown, headers: {
    get(name: string): string | null;
}, statusText?: string): ApiError;
/** The root of everything this client throws. */
export class TokenpulseError extends Error {
    /**
     * @param {string} message
     * @param {{cause?: unknown}} [options]
     */
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/**
 * The service answered with an error status: `status`, `code` (e.g. `TOKEN_NOT_FOUND`),
 * `message`, the parsed `body`, the `requestId` (`X-Request-ID`) and, for 429 and 503,
 * `retryAfter` in seconds (from `Retry-After`), else null.
 */
export class ApiError extends TokenpulseError {
    /**
     * @param {number} status
     * @param {string} code
     * @param {string} message
     * @param {{body?: unknown, requestId?: string | null, retryAfter?: number | null}} [extra]
     */
    constructor(status: number, code: string, message: string, extra?: {
        body?: unknown;
        requestId?: string | null;
        retryAfter?: number | null;
    });
    /** @readonly */ readonly status: number;
    /** @readonly */ readonly code: string;
    /** @readonly */ readonly detail: string;
    /** @readonly @type {unknown} */ readonly body: unknown;
    /** @readonly @type {string | null} */ readonly requestId: string | null;
    /** @readonly @type {number | null} */ readonly retryAfter: number | null;
}
/** 400: a parameter is malformed or a pair unsupported (`code` says which). */
export class BadRequest extends ApiError {
}
/** 401: no key, or a wrong one. */
export class Unauthorized extends ApiError {
}
/** 403: the key's role may not call this. */
export class Forbidden extends ApiError {
}
/** 404: no such token (`TOKEN_NOT_FOUND`) or endpoint. */
export class NotFound extends ApiError {
}
/** 409: a symbol names several tokens (`AMBIGUOUS_TOKEN`; candidates in `body`). */
export class Conflict extends ApiError {
}
/** 429: over the rate limit; wait `retryAfter` seconds. */
export class RateLimited extends ApiError {
}
/** 503 `STALE_DATA`: the value is older than the `max_age_ms` asked for. */
export class StaleData extends ApiError {
}
/** 503 otherwise: no value at all yet, or the service is not ready. */
export class Unavailable extends ApiError {
}
/** Another 5xx. */
export class ServerError extends ApiError {
}
/** No answer from the service: connection refused or reset, or `timedOut`. */
export class NetworkError extends TokenpulseError {
    /**
     * @param {string} message
     * @param {{cause?: unknown, timedOut?: boolean}} [options]
     */
    constructor(message: string, options?: {
        cause?: unknown;
        timedOut?: boolean;
    });
    /** @readonly */ readonly timedOut: boolean;
}
/** A stream was refused in a way retrying cannot fix; `code` is the service's. */
export class StreamError extends TokenpulseError {
    /**
     * @param {string} code
     * @param {string} message
     */
    constructor(code: string, message: string);
    /** @readonly */ readonly code: string;
    /** @readonly */ readonly detail: string;
}
