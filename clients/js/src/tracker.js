// Merged state and last `seq` per key of one kind: tells applied, old and gap messages apart.
//
// A snapshot replaces the state. A delta applies when its `base_seq` is the last `seq` seen
// for its key (a delta that merges several updates — the server conflates for slow readers —
// still has the last seen `seq` as its base). Anything else means a message was lost: GAP, and
// the stream gets a fresh snapshot (Socket.IO: resubscribe the key; SSE: reopen).

/** @typedef {import("./types.js").Update} Update */

/** Returned by {@link Tracker.apply} when a message was lost before this one. */
export const GAP = Symbol("gap");

export class Tracker {
  /** @param {"pair" | "token"} kind */
  constructor(kind) {
    /** @readonly */ this.kind = kind;
    /** @type {Map<string, Record<string, unknown>>} */ this.state = new Map();
    /** @type {Map<string, number>} */ this.seq = new Map();
  }

  /** Forget everything (a new connection starts with snapshots). */
  reset() {
    this.state.clear();
    this.seq.clear();
  }

  /**
   * The update `message` makes, null for an old or duplicate message, or GAP after a loss.
   * @param {unknown} message A `ltp_update` / `token_update` payload.
   * @returns {Update | null | typeof GAP}
   */
  apply(message) {
    if (!message || typeof message !== "object") return null;
    const m = /** @type {Record<string, any>} */ (message);
    const { id, seq } = m;
    if (typeof id !== "string" || !Number.isInteger(seq)) return null;
    const ts = typeof m.ts === "number" ? m.ts : null;
    if (m.type === "snapshot") {
      const data = { ...(m.data ?? {}) };
      this.state.set(id, data);
      this.seq.set(id, seq);
      return this.#update(id, "snapshot", seq, ts, data, data);
    }
    const last = this.seq.get(id);
    if (last === undefined) return GAP; // a delta without the snapshot it builds on
    if (seq <= last) return null;
    const base = Number.isInteger(m.base_seq) ? m.base_seq : seq - 1;
    if (base !== last) return GAP;
    const changes = { ...(m.changes ?? {}) };
    const state = { ...this.state.get(id), ...changes };
    this.state.set(id, state);
    this.seq.set(id, seq);
    return this.#update(id, "delta", seq, ts, changes, state);
  }

  /**
   * @param {string} id @param {"snapshot" | "delta"} type @param {number} seq
   * @param {number | null} ts @param {Record<string, unknown>} changes
   * @param {Record<string, unknown>} state
   * @returns {Update}
   */
  #update(id, type, seq, ts, changes, state) {
    return /** @type {Update} */ ({ kind: this.kind, id, type, seq, ts, changes, state: { ...state } });
  }
}
