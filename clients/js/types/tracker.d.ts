/** @typedef {import("./types.js").Update} Update */
/** Returned by {@link Tracker.apply} when a message was lost before this one. */
export const GAP: unique symbol;
export class Tracker {
    /** @param {"pair" | "token"} kind */
    constructor(kind: "pair" | "token");
    /** @readonly */ readonly kind: "pair" | "token";
    /** @type {Map<string, Record<string, unknown>>} */ state: Map<string, Record<string, unknown>>;
    /** @type {Map<string, number>} */ seq: Map<string, number>;
    /** Forget everything (a new connection starts with snapshots). */
    reset(): void;
    /**
     * The update `message` makes, null for an old or duplicate message, or GAP after a loss.
     * @param {unknown} message A `ltp_update` / `token_update` payload.
     * @returns {Update | null | typeof GAP}
     */
    apply(message: unknown): Update | null | typeof GAP;
    #private;
}
export type Update = import("./types.js").Update;
