// Live updates over SSE or Socket.IO that survive restarts: reconnect with capped exponential
// backoff and jitter, resubscribe, and a fresh snapshot after a `seq` gap. Only a refusal that
// retrying cannot fix (bad key, unknown pair or token, bad request) ends a stream, with a
// StreamError.

import { errorCodeOf, StreamError } from "./errors.js";
import { readEvents } from "./sse.js";
import { GAP, Tracker } from "./tracker.js";

/** @typedef {import("./types.js").Update} Update */
/** @typedef {import("./types.js").StreamStatus} StreamStatus */

/**
 * @typedef {object} StreamOptions
 * @property {string[]} [pairs] Pairs to stream (any spelling), `ltp_update`s.
 * @property {string[]} [tokens] Token ids (or symbols, CMC/CoinGecko ids), `token_update`s.
 * @property {boolean} [allTokens] Every token, present and future (SSE only).
 * @property {"sse" | "socketio"} [transport="sse"] SSE needs nothing else; Socket.IO needs the
 *   `socket.io-client` peer dependency (or `io`).
 * @property {number} [minIntervalMs] At most one message per key per this many ms.
 * @property {{initialMs?: number, maxMs?: number}} [backoff] Reconnect delays (500 ms .. 30 s).
 * @property {number} [idleTimeoutMs=45000] SSE: reopen a connection silent this long (the
 *   service sends a keepalive every 15 s).
 * @property {AbortSignal} [signal] Closes the stream when aborted.
 * @property {(url: string, options: object) => any} [io] socket.io-client's `io` (default:
 *   imported from `socket.io-client` when first needed).
 */

/**
 * @typedef {object} StreamEvents
 * @property {Update} update Every update, as it arrives.
 * @property {StreamStatus} status The stream's status changed.
 * @property {{kind: "pair" | "token", id: string}} gap A lost message was detected; a fresh
 *   snapshot is on its way.
 * @property {StreamError} error The stream was refused for good (it is closed).
 */

/**
 * @typedef {object} Connection
 * @property {string} baseUrl
 * @property {string | null} apiKey
 * @property {string | null} token
 * @property {typeof fetch} fetch
 */

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const FATAL_CODES = new Set([
  "UNAUTHORIZED",
  "FORBIDDEN",
  "INVALID_PARAMETER",
  "UNSUPPORTED_PAIR",
  "TOKEN_NOT_FOUND",
  "AMBIGUOUS_TOKEN",
]);
const ACK_TIMEOUT_MS = 10_000;
const EVENTS = /** @type {const} */ ({ ltp_update: "pair", token_update: "token" });

/** Capped exponential backoff with jitter (each wait between half and all of the delay). */
class Backoff {
  /** @param {number} initialMs @param {number} maxMs */
  constructor(initialMs, maxMs) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.delayMs = initialMs;
  }

  reset() {
    this.delayMs = this.initialMs;
  }

  /** @param {AbortSignal} signal @returns {Promise<void>} */
  wait(signal) {
    const ms = this.delayMs * (0.5 + Math.random() / 2);
    this.delayMs = Math.min(this.delayMs * 2, this.maxMs);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

/**
 * A live stream: `for await (const update of stream)`, or `stream.on("update", fn)`.
 *
 * Iterating conflates per key: a slow reader gets the newest state of each key, with the
 * changes merged, never a growing queue. Listeners get every update.
 */
export class Stream {
  /** @type {StreamStatus} */
  #status = "connecting";
  #closed = new AbortController();
  /** @type {Map<string, Set<(value: any) => void>>} */
  #listeners = new Map();
  /** @type {Map<string, Update>} */
  #pending = new Map();
  /** @type {(() => void) | null} */
  #wake = null;
  /** @type {StreamError | null} */
  #failure = null;
  #failureSeen = false;
  /** @type {Map<string, StreamStatus>} */
  #parts = new Map();
  /** @type {Connection} */
  #connection;
  /** @type {StreamOptions & {pairs: string[], tokens: string[]}} */
  #options;

  /**
   * Use {@link TokenpulseClient.stream} to make one.
   * @param {Connection} connection
   * @param {StreamOptions} options
   */
  constructor(connection, options) {
    const pairs = options.pairs ?? [];
    const tokens = options.tokens ?? [];
    const transport = options.transport ?? "sse";
    if (transport !== "sse" && transport !== "socketio") {
      throw new TypeError(`transport must be "sse" or "socketio", not ${JSON.stringify(transport)}`);
    }
    if (pairs.length === 0 && tokens.length === 0 && !options.allTokens) {
      throw new TypeError("stream() needs pairs, tokens or allTokens");
    }
    if (options.allTokens && transport !== "sse") {
      throw new TypeError("allTokens needs the sse transport");
    }
    /** @readonly */ this.transport = transport;
    /** Connections lost and made again so far. */
    this.reconnects = 0;
    /** `seq` gaps detected so far (each followed by a fresh snapshot). */
    this.gaps = 0;
    this.#connection = connection;
    this.#options = { ...options, pairs, tokens };
    const signal = options.signal;
    if (signal?.aborted) this.close();
    signal?.addEventListener("abort", () => this.close(), { once: true });
    if (transport === "sse") this.#runSse();
    else this.#runSocketIo().catch((error) => this.#fail(new StreamError("CLIENT_ERROR", String(error))));
  }

  /** @returns {StreamStatus} */
  get status() {
    return this.#status;
  }

  /**
   * Listen to `event`; returns a function that stops listening.
   * @template {keyof StreamEvents} E
   * @param {E} event
   * @param {(value: StreamEvents[E]) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** End the stream: connections closed, iteration finishes. */
  close() {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#setStatus("closed");
    this.#wake?.();
  }

  /** @returns {AsyncIterator<Update, undefined>} */
  [Symbol.asyncIterator]() {
    return {
      next: async () => {
        for (;;) {
          const first = this.#pending.entries().next();
          if (!first.done) {
            this.#pending.delete(first.value[0]);
            return { value: first.value[1], done: false };
          }
          if (this.#failure && !this.#failureSeen) {
            this.#failureSeen = true;
            throw this.#failure;
          }
          if (this.#closed.signal.aborted) return { value: undefined, done: true };
          await new Promise((resolve) => (this.#wake = () => resolve(undefined)));
          this.#wake = null;
        }
      },
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * @template {keyof StreamEvents} E
   * @param {E} event @param {StreamEvents[E]} value
   */
  #emit(event, value) {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        listener(value);
      } catch (error) {
        // A listener's bug must not stop the stream; report it where it can be seen.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** @param {Update} update */
  #deliver(update) {
    if (this.#closed.signal.aborted) return;
    this.#emit("update", update);
    const key = `${update.kind}:${update.id}`;
    const waiting = this.#pending.get(key);
    if (waiting) {
      // Conflate: the newest state, every change since the reader last saw this key.
      const type = waiting.type === "snapshot" ? "snapshot" : update.type;
      const changes = { ...waiting.changes, ...update.changes };
      update = /** @type {Update} */ ({ ...update, type, changes });
    }
    this.#pending.set(key, update);
    this.#wake?.();
  }

  /** @param {StreamError} error */
  #fail(error) {
    if (this.#closed.signal.aborted) return;
    this.#failure = error;
    this.#emit("error", error);
    this.close();
  }

  /** @param {StreamStatus} status */
  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.#emit("status", status);
  }

  /** The stream's status from its connections': open when all are. @param {string} part @param {StreamStatus} status */
  #partStatus(part, status) {
    const before = this.#parts.get(part);
    if (status === "reconnecting" && before === "open") this.reconnects += 1;
    this.#parts.set(part, status);
    if (this.#closed.signal.aborted) return;
    const all = [...this.#parts.values()];
    this.#setStatus(all.every((s) => s === "open") ? "open" : all.includes("reconnecting") ? "reconnecting" : "connecting");
  }

  #backoff() {
    const { initialMs = 500, maxMs = 30_000 } = this.#options.backoff ?? {};
    return new Backoff(initialMs, maxMs);
  }

  // ------------------------------------------------------------------------------ SSE

  #runSse() {
    const { pairs, tokens, allTokens, minIntervalMs } = this.#options;
    const common = {
      min_interval_ms: minIntervalMs?.toString(),
      ...(this.#connection.token ? { token: this.#connection.token } : {}),
    };
    if (pairs.length > 0) this.#sse("pair", "/api/v1/ltp/live", { pair: pairs.join(","), ...common });
    if (tokens.length > 0 || allTokens) {
      const ids = allTokens ? undefined : tokens.join(",");
      this.#sse("token", "/api/v1/tokens/live", { ids, ...common });
    }
  }

  /**
   * One SSE connection, reopened for ever (until closed or refused).
   * @param {"pair" | "token"} kind @param {string} path
   * @param {Record<string, string | undefined>} params
   */
  async #sse(kind, path, params) {
    const url = new URL(this.#connection.baseUrl + path);
    for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
    /** @type {Record<string, string>} */
    const headers = { Accept: "text/event-stream" };
    if (this.#connection.apiKey && !this.#connection.token) headers["X-API-Key"] = this.#connection.apiKey;
    const tracker = new Tracker(kind);
    const backoff = this.#backoff();
    const closed = this.#closed.signal;
    const idleMs = this.#options.idleTimeoutMs ?? 45_000;
    this.#partStatus(kind, "connecting");
    while (!closed.aborted) {
      const attempt = new AbortController();
      const stop = () => attempt.abort();
      closed.addEventListener("abort", stop, { once: true });
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let idle;
      const watchdog = () => {
        clearTimeout(idle);
        idle = setTimeout(stop, idleMs);
      };
      let gap = false;
      try {
        watchdog();
        const response = await this.#connection.fetch(url, { headers, signal: attempt.signal });
        if (response.status !== 200 || !response.body) {
          const text = await response.text().catch(() => "");
          if (!RETRYABLE_STATUS.has(response.status)) {
            let body = null;
            try {
              body = JSON.parse(text);
            } catch {
              // not JSON: the status says enough
            }
            const [code, message] = errorCodeOf(body, `HTTP_${response.status}`, text.slice(0, 500));
            this.#fail(new StreamError(code, message));
            return;
          }
        } else {
          tracker.reset();
          backoff.reset();
          this.#partStatus(kind, "open");
          for await (const event of readEvents(response.body, watchdog)) {
            if (!(event.event in EVENTS)) continue;
            const result = tracker.apply(JSON.parse(event.data));
            if (result === GAP) {
              gap = true;
              this.gaps += 1;
              this.#emit("gap", { kind, id: String(JSON.parse(event.data).id) });
              break; // reopen at once: a new connection starts with fresh snapshots
            }
            if (result) this.#deliver(result);
          }
        }
      } catch {
        // connection trouble (refused, reset, idle, bad frame): reconnect below
      } finally {
        clearTimeout(idle);
        closed.removeEventListener("abort", stop);
        attempt.abort();
      }
      if (closed.aborted) return;
      this.#partStatus(kind, "reconnecting");
      if (gap) this.#partStatus(kind, "connecting");
      else await backoff.wait(closed);
    }
  }

  // ------------------------------------------------------------------------ Socket.IO

  async #runSocketIo() {
    let io = this.#options.io;
    if (io === undefined) {
      try {
        io = (await import("socket.io-client")).io;
      } catch (error) {
        const why = "the socketio transport needs socket.io-client: npm install socket.io-client, or pass `io`";
        this.#fail(new StreamError("CLIENT_ERROR", `${why} (${error})`));
        return;
      }
    }
    const closed = this.#closed.signal;
    if (closed.aborted) return;
    const { apiKey, token, baseUrl } = this.#connection;
    const auth = token ? { token } : apiKey ? { api_key: apiKey } : {};
    const socket = io(baseUrl, {
      auth,
      transports: ["websocket"],
      reconnection: false,
      autoConnect: false,
      timeout: ACK_TIMEOUT_MS,
    });
    const trackers = { pair: new Tracker("pair"), token: new Tracker("token") };
    const backoff = this.#backoff();
    const { pairs, tokens } = this.#options;
    let retrying = false;
    closed.addEventListener("abort", () => socket.disconnect(), { once: true });

    /** @param {"pair" | "token"} kind @param {string[]} ids */
    const subscribe = async (kind, ids) => {
      const [event, field] = kind === "pair" ? ["subscribe_pair", "pairs"] : ["subscribe_token", "token_ids"];
      /** @type {Record<string, unknown>} */
      const payload = { [field]: ids };
      if (this.#options.minIntervalMs !== undefined) payload.min_interval_ms = this.#options.minIntervalMs;
      /** @type {any} */
      let ack;
      try {
        ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
      } catch {
        socket.disconnect(); // no ack in time: start over on a new connection
        return;
      }
      if (!ack?.ok) {
        const error = ack?.error ?? {};
        this.#fail(new StreamError(String(error.code ?? "BAD_ACK"), String(error.message ?? JSON.stringify(ack))));
      }
    };
    const retry = async () => {
      if (retrying || closed.aborted) return;
      retrying = true;
      this.#partStatus("socket", "reconnecting");
      await backoff.wait(closed);
      retrying = false;
      if (!closed.aborted) socket.connect();
    };
    /** @param {"pair" | "token"} kind @param {unknown} message */
    const handle = (kind, message) => {
      const result = trackers[kind].apply(message);
      if (result === GAP) {
        const id = String(/** @type {{id?: unknown}} */ (message).id);
        this.gaps += 1;
        this.#emit("gap", { kind, id });
        subscribe(kind, [id]); // the fresh snapshot replaces the state
      } else if (result) {
        this.#deliver(result);
      }
    };
    for (const [event, kind] of Object.entries(EVENTS)) {
      socket.on(event, (/** @type {unknown} */ message) => handle(kind, message));
    }
    socket.on("connect", () => {
      trackers.pair.reset();
      trackers.token.reset();
      backoff.reset();
      this.#partStatus("socket", "open");
      if (pairs.length > 0) subscribe("pair", pairs);
      if (tokens.length > 0) subscribe("token", tokens);
    });
    socket.on("connect_error", (/** @type {any} */ error) => {
      const code = error?.data?.code;
      if (FATAL_CODES.has(code)) this.#fail(new StreamError(code, String(error?.data?.message ?? error?.message)));
      else retry();
    });
    socket.on("disconnect", () => retry());
    this.#partStatus("socket", "connecting");
    socket.connect();
  }
}
