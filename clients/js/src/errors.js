// Every error the client throws, one tree (mirrors the service's error codes):
//
//   TokenpulseError
//   ├── ApiError                 the service answered with an error status
//   │   ├── BadRequest           400 INVALID_PARAMETER, UNSUPPORTED_PAIR
//   │   ├── Unauthorized         401 UNAUTHORIZED
//   │   ├── Forbidden            403 FORBIDDEN
//   │   ├── NotFound             404 TOKEN_NOT_FOUND, NOT_FOUND
//   │   ├── Conflict             409 AMBIGUOUS_TOKEN
//   │   ├── RateLimited          429 RATE_LIMIT_EXCEEDED (retryAfter)
//   │   ├── StaleData            503 STALE_DATA: older than the max_age_ms asked for (retryAfter)
//   │   ├── Unavailable          503 otherwise (ALL_PRICES_FAILED, …) (retryAfter)
//   │   └── ServerError          any other 5xx (PRICE_FETCH_ERROR 502, …)
//   ├── NetworkError             no answer: refused, reset, DNS, timeout (`timedOut`)
//   └── StreamError              a stream was refused for good (bad key, unknown pair, …)

/** The root of everything this client throws. */
export class TokenpulseError extends Error {
  /**
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
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
  constructor(status, code, message, extra = {}) {
    super(`${status} ${code}: ${message}`);
    /** @readonly */ this.status = status;
    /** @readonly */ this.code = code;
    /** @readonly */ this.detail = message;
    /** @readonly @type {unknown} */ this.body = extra.body ?? null;
    /** @readonly @type {string | null} */ this.requestId = extra.requestId ?? null;
    /** @readonly @type {number | null} */ this.retryAfter = extra.retryAfter ?? null;
  }
}

/** 400: a parameter is malformed or a pair unsupported (`code` says which). */
export class BadRequest extends ApiError {}
/** 401: no key, or a wrong one. */
export class Unauthorized extends ApiError {}
/** 403: the key's role may not call this. */
export class Forbidden extends ApiError {}
/** 404: no such token (`TOKEN_NOT_FOUND`) or endpoint. */
export class NotFound extends ApiError {}
/** 409: a symbol names several tokens (`AMBIGUOUS_TOKEN`; candidates in `body`). */
export class Conflict extends ApiError {}
/** 429: over the rate limit; wait `retryAfter` seconds. */
export class RateLimited extends ApiError {}
/** 503 `STALE_DATA`: the value is older than the `max_age_ms` asked for. */
export class StaleData extends ApiError {}
/** 503 otherwise: no value at all yet, or the service is not ready. */
export class Unavailable extends ApiError {}
/** Another 5xx. */
export class ServerError extends ApiError {}

/** No answer from the service: connection refused or reset, or `timedOut`. */
export class NetworkError extends TokenpulseError {
  /**
   * @param {string} message
   * @param {{cause?: unknown, timedOut?: boolean}} [options]
   */
  constructor(message, options = {}) {
    super(message, { cause: options.cause });
    /** @readonly */ this.timedOut = options.timedOut ?? false;
  }
}

/** A stream was refused in a way retrying cannot fix; `code` is the service's. */
export class StreamError extends TokenpulseError {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(`${code}: ${message}`);
    /** @readonly */ this.code = code;
    /** @readonly */ this.detail = message;
  }
}

/** @type {Record<number, typeof ApiError>} */
const BY_STATUS = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  429: RateLimited,
};

/**
 * Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), else null.
 * @param {string | null} value
 * @param {number} [now] ms since the epoch
 * @returns {number | null}
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - now) / 1000);
}

/**
 * The code and message of an error body: the standard model `{error: {code, message}}` or the
 * LTP paths' flat `{error: "<CODE>", message}`.
 * @param {unknown} body
 * @param {string} fallbackCode
 * @param {string} fallbackMessage
 * @returns {[string, string]}
 */
export function errorCodeOf(body, fallbackCode, fallbackMessage) {
  if (body && typeof body === "object") {
    const { error, message } = /** @type {{error?: unknown, message?: unknown}} */ (body);
    if (error && typeof error === "object") {
      const inner = /** @type {{code?: unknown, message?: unknown}} */ (error);
      return [String(inner.code ?? fallbackCode), String(inner.message ?? fallbackMessage)];
    }
    if (typeof error === "string") return [error, String(message ?? fallbackMessage)];
  }
  return [fallbackCode, fallbackMessage];
}

/**
 * The error for an answer with status `status` and parsed `body`.
 * @param {number} status
 * @param {unknown} body
 * @param {{get(name: string): string | null}} headers
 * @param {string} [statusText]
 * @returns {ApiError}
 */
export function errorFromResponse(status, body, headers, statusText = "") {
  const [code, message] = errorCodeOf(body, `HTTP_${status}`, statusText || `HTTP ${status}`);
  const extra = {
    body,
    requestId: headers.get("x-request-id"),
    retryAfter: parseRetryAfter(headers.get("retry-after")),
  };
  let Kind = BY_STATUS[status];
  if (Kind === undefined && status === 503) Kind = code === "STALE_DATA" ? StaleData : Unavailable;
  if (Kind === undefined) Kind = status >= 500 ? ServerError : ApiError;
  return new Kind(status, code, message, extra);
}
