// One live SSE stream through EventSource, kept whole: per key, a snapshot then deltas that
// must build on the last `seq` seen (`base_seq`). A gap (a lost message) reopens the stream,
// which starts again with fresh snapshots; so does a stream the browser gave up on.

const BACKOFF_MS = [1000, 2000, 5000, 10000, 20000];

export class LiveFeed {
  /**
   * @param {{
   *   url: () => string,
   *   event: string,
   *   onUpdate: (id: string, state: object, changes: object, type: string) => void,
   *   onStatus: (status: "connecting" | "live" | "reconnecting" | "offline") => void,
   *   onGiveUp: () => Promise<void>,
   * }} options
   */
  constructor(options) {
    this.options = options;
    this.state = new Map();
    this.seq = new Map();
    this.source = null;
    this.failures = 0;
    this.gaps = 0;
    this.timer = null;
    this.started = false;
  }

  start() {
    this.started = true;
    this.restart();
  }

  stop() {
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
  }

  /** Close and open again now (e.g. with new credentials). */
  restart() {
    this.stop();
    this.#open();
  }

  #open() {
    const { url, event, onStatus } = this.options;
    const source = new EventSource(url());
    this.source = source;
    onStatus(this.failures ? "reconnecting" : "connecting");
    source.addEventListener("open", () => {
      this.failures = 0;
      onStatus("live");
    });
    source.addEventListener(event, (message) => this.#receive(message.data));
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error such as 401, 429 or 503): find out, then retry.
        this.source = null;
        onStatus("offline");
        const wait = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
        this.failures += 1;
        this.timer = setTimeout(() => this.options.onGiveUp().finally(() => this.source || this.#open()), wait);
      } else {
        onStatus("reconnecting"); // the browser reconnects by itself (retry: 2000)
      }
    });
  }

  #receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const { id, seq, type } = message;
    if (typeof id !== "string" || !Number.isInteger(seq)) return;
    if (type === "snapshot") {
      const state = { ...message.data };
      this.state.set(id, state);
      this.seq.set(id, seq);
      this.options.onUpdate(id, state, state, "snapshot");
      return;
    }
    const last = this.seq.get(id);
    if (last !== undefined && seq <= last) return; // old news
    if (last === undefined || (message.base_seq ?? seq - 1) !== last) {
      this.gaps += 1;
      this.restart(); // a lost message: a new stream starts from fresh snapshots
      return;
    }
    const state = { ...this.state.get(id), ...message.changes };
    this.state.set(id, state);
    this.seq.set(id, seq);
    this.options.onUpdate(id, state, message.changes ?? {}, "delta");
  }
}
