/**
 * Freshness carried by every value (SPEC §4.6).
 */
export type Freshness = {
    /**
     * The source that served the value (`kraken_ws`, `replay`, …).
     */
    source: string | null;
    /**
     * The provider's own time of the value, or null.
     */
    as_of: string | null;
    /**
     * When tokenpulse received it.
     */
    received_at: string;
    /**
     * Milliseconds since the value was last known current.
     */
    age_ms: number;
    /**
     * `age_ms` is beyond the service's `STALE_AFTER`.
     */
    stale: boolean;
};
/**
 * One last traded price (`GET /api/v1/ltp`, `ltp_update` state).
 */
export type Price = Freshness & {
    pair: string;
    amount: number;
    timestamp?: string | null;
    bid?: number | null;
    ask?: number | null;
    volume_24h?: number | null;
    vwap?: number | null;
    [field: string]: unknown;
};
/**
 * Why one requested pair has no price (in a 206 answer).
 */
export type PairError = {
    pair: string;
    /**
     * `UNSUPPORTED_PAIR`, `PRICE_FETCH_ERROR`, `STALE_DATA`…
     */
    code: string;
    message: string;
};
/**
 * A supported pair (`GET /api/v1/pairs`): provider names, the serving source and, when
 * several venues are enabled, the aggregate price.
 */
export type PairInfo = {
    pair: string;
    base: string;
    quote: string;
    providers: Record<string, Record<string, string>>;
    serving_source: string | null;
    aggregate: Record<string, unknown> | null;
    [field: string]: unknown;
};
/**
 * One source's health (`GET /api/v1/sources`).
 */
export type SourceHealth = {
    name: string;
    kind: string;
    connected: boolean;
    state: string;
    detail?: string;
    last_message_at: string | null;
    last_message_age_ms: number | null;
    messages?: number;
    error_count: number;
    last_error: string | null;
    role?: string;
    serving?: string[];
    [field: string]: unknown;
};
/**
 * `GET /api/v1/sources`: every source, who serves each pair and why, the market-data source.
 */
export type SourcesReport = {
    sources: SourceHealth[];
    pairs: Record<string, {
        source: string | null;
        reason: string;
        since?: string | null;
    }>;
    market?: (SourceHealth & {
        tokens?: number;
    }) | null;
    role?: string;
    [field: string]: unknown;
};
/**
 * `GET /health`.
 */
export type Health = {
    status: string;
    timestamp: string;
    [field: string]: unknown;
};
/**
 * `GET /ready`: `ready` is false on a 503 (the body says which dependency fails).
 */
export type Readiness = {
    ready: boolean;
    status: string;
    services: Record<string, unknown>;
    errors?: unknown[];
    [field: string]: unknown;
};
/**
 * A velocity trend over one window (1h, 4h, 12h, 7d); nulls with a `reason` without history.
 */
export type Trend = {
    change_pct: number | null;
    direction: "increasing" | "decreasing" | "stable" | null;
    mean: number | null;
    reference_velocity?: number | null | undefined;
    reference_at?: string | null | undefined;
    /**
     * `insufficient_history` when there is no trend yet.
     */
    reason: string | null;
};
/**
 * A token snapshot (`GET /api/v1/tokens`, `token_update` state).
 */
export type Token = Freshness & {
    id: string;
    symbol: string;
    name: string;
    cmc_id: number | null;
    coingecko_id: string | null;
    rank: number | null;
    price_usd: number | null;
    market_cap_usd: number | null;
    volume_24h_usd: number | null;
    circulating_supply: number | null;
    total_supply: number | null;
    max_supply: number | null;
    percent_change_1h: number | null;
    percent_change_24h: number | null;
    percent_change_7d: number | null;
    velocity: number | null;
    quality: {
        flags: string[];
        [field: string]: unknown;
    };
    [field: string]: unknown;
};
/**
 * One token with its velocity trends (`GET /api/v1/tokens/{id}`); `history` with `history=`.
 */
export type TokenDetail = Token & {
    trends: Record<string, Trend>;
    history?: {
        granularity: string;
        fields: string[];
        points: unknown[][];
    };
};
/**
 * Pagination of `GET /api/v1/tokens`; `next` is the cursor of the next page, or null.
 */
export type Pagination = {
    total: number;
    limit: number;
    start: number;
    next: string | null;
};
/**
 * One page of tokens.
 */
export type TokenPage = {
    tokens: Token[];
    pagination: Pagination;
    meta: Record<string, unknown>;
};
/**
 * `GET /api/v1/tokens/{id}/velocity`.
 */
export type Velocity = {
    id: string;
    symbol: string;
    velocity: number | null;
    formula: string;
    inputs: Record<string, number | null>;
    flags: string[];
    trends: Record<string, Trend>;
    window: {
        window: string;
        granularity: string;
        points: [string, number | null][];
    };
    source: string | null;
    as_of: string | null;
    age_ms: number;
    stale: boolean;
    [field: string]: unknown;
};
/**
 * One history point: `t` and the requested fields (`open`, `high`, `low`, `close`,
 * `market_cap`, `volume_24h`, `velocity`, `samples`…).
 */
export type HistoryPoint = {
    t: string;
    [field: string]: number | string | null;
};
/**
 * `GET /api/v1/tokens/{id}/history`; `gaps` are the stretches of the range without data.
 */
export type History = {
    id: string;
    from: string;
    to: string;
    granularity: string;
    points: HistoryPoint[];
    count: number;
    gaps: {
        from: string;
        to: string;
    }[];
};
/**
 * `POST /api/v1/ltp/refresh`.
 */
export type RefreshResult = {
    message: string;
    pairs: string[];
    [field: string]: unknown;
};
/**
 * A session token (`POST /api/v1/sessions`, SPEC §8.4) for stream handshakes.
 */
export type Session = {
    token: string;
    expiresAt: Date | null;
    /**
     * The whole answer.
     */
    raw: Record<string, unknown>;
};
/**
 * A stream update of a pair: `state` is the whole price after this message.
 */
export type PairUpdate = {
    kind: "pair";
    /**
     * The pair (`BTC/USD`).
     */
    id: string;
    /**
     * A snapshot after each (re)subscription, then deltas.
     */
    type: "snapshot" | "delta";
    /**
     * Per key, increasing.
     */
    seq: number;
    /**
     * The server's send time, ms since the epoch.
     */
    ts: number | null;
    /**
     * The fields this message changed (all, for a snapshot).
     */
    changes: Partial<Price>;
    state: Price;
};
/**
 * A stream update of a token: `state` is the whole snapshot after this message.
 */
export type TokenUpdate = {
    kind: "token";
    /**
     * The token id (`bitcoin`).
     */
    id: string;
    type: "snapshot" | "delta";
    seq: number;
    ts: number | null;
    changes: Partial<Token>;
    state: Token;
};
export type Update = PairUpdate | TokenUpdate;
/**
 * Where a stream is: `connecting` (first attempt), `open`, `reconnecting` (after a loss,
 * waiting out the backoff), `closed` (by `close()` or for good after a refusal).
 */
export type StreamStatus = "connecting" | "open" | "reconnecting" | "closed";
