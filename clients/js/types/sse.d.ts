/**
 * @typedef {object} ServerEvent
 * @property {string} event The `event:` field (`message` when absent).
 * @property {string} data The `data:` lines, joined by newlines.
 * @property {string | null} id The `id:` field.
 */
/**
 * Parse an event stream into events; `onChunk` is called for every chunk read (keepalive
 * comments included), so a watchdog can tell a silent connection from a quiet one.
 * @param {ReadableStream<Uint8Array>} body
 * @param {() => void} [onChunk]
 * @returns {AsyncGenerator<ServerEvent, void, undefined>}
 */
export function readEvents(body: ReadableStream<Uint8Array>, onChunk?: () => void): AsyncGenerator<ServerEvent, void, undefined>;
export type ServerEvent = {
    /**
     * The `event:` field (`message` when absent).
     */
    event: string;
    /**
     * The `data:` lines, joined by newlines.
     */
    data: string;
    /**
     * The `id:` field.
     */
    id: string | null;
};
