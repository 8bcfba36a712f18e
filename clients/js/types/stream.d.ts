/**
 * A live stream: `for await (const update of stream)`, or `stream.on("update", fn)`.
 *
 * Iterating conflates per key: a slow reader gets the newest state of each key, with the
 * changes merged, never a growing queue. Listeners get every update.
 */
export class Stream {
    /**
     * Use {@link TokenpulseClient.stream} to make one.
     * @param {Connection} connection
     * @param {StreamOptions} options
     */
    constructor(connection: Connection, options: StreamOptions);
    /** @readonly */ readonly transport: "sse" | "socketio";
    /** Connections lost and made again so far. */
    reconnects: number;
    /** `seq` gaps detected so far (each followed by a fresh snapshot). */
    gaps: number;
    /** @returns {StreamStatus} */
    get status(): StreamStatus;
    /**
     * Listen to `event`; returns a function that stops listening.
     * @template {keyof StreamEvents} E
     * @param {E} event
     * @param {(value: StreamEvents[E]) => void} listener
     * @returns {() => void}
     */
    on<E extends keyof StreamEvents>(event: E, listener: (value: StreamEvents[E]) => void): () => void;
    /** End the stream: connections closed, iteration finishes. */
    close(): void;
    /** @returns {AsyncIterator<Update, undefined>} */
    [Symbol.asyncIterator](): AsyncIterator<Update, undefined>;
    #private;
}
export type Update = import("./types.js").Update;
export type StreamStatus = import("./types.js").StreamStatus;
export type StreamOptions = {
    /**
     * Pairs to stream (any spelling), `ltp_update`s.
     */
    pairs?: string[] | undefined;
    /**
     * Token ids (or symbols, CMC/CoinGecko ids), `token_update`s.
     */
    tokens?: string[] | undefined;
    /**
     * Every token, present and future (SSE only).
     */
    allTokens?: boolean | undefined;
    /**
     * SSE needs nothing else; Socket.IO needs the
     * `socket.io-client` peer dependency (or `io`).
     */
    transport?: "sse" | "socketio" | undefined;
    /**
     * At most one message per key per this many ms.
     */
    minIntervalMs?: number | undefined;
    /**
     * Reconnect delays (500 ms .. 30 s).
     */
    backoff?: {
        initialMs?: number;
        maxMs?: number;
    } | undefined;
    /**
     * SSE: reopen a connection silent this long (the
     * service sends a keepalive every 15 s).
     */
    idleTimeoutMs?: number | undefined;
    /**
     * Closes the stream when aborted.
     */
    signal?: AbortSignal | undefined;
    /**
     * socket.io-client's `io` (default:
     * imported from `socket.io-client` when first needed).
     */
    io?: ((url: string, options: object) => any) | undefined;
};
export type StreamEvents = {
    /**
     * Every update, as it arrives.
     */
    update: Update;
    /**
     * The stream's status changed.
     */
    status: StreamStatus;
    /**
     * A lost message was detected; a fresh
     * snapshot is on its way.
     */
    gap: {
        kind: "pair" | "token";
        id: string;
    };
    /**
     * The stream was refused for good (it is closed).
     */
    error: StreamError;
};
export type Connection = {
    baseUrl: string;
    apiKey: string | null;
    token: string | null;
    fetch: typeof fetch;
};
import { StreamError } from "./errors.js";
