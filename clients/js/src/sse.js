// Server-Sent Events over fetch (Node >= 20 and browsers alike): unlike EventSource, fetch can
// send the `X-API-Key` header, and the caller decides when and how to reconnect.

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
export async function* readEvents(body, onChunk) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  /** @type {string[]} */
  let data = [];
  /** @type {string | null} */
  let id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onChunk?.();
      buffer += decoder.decode(value, { stream: true });
      let end;
      // A "\r" at the very end may be half of a "\r\n": wait for the next chunk.
      while ((end = buffer.search(/\r\n|\r(?!$)|\n/)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) yield { event: event || "message", data: data.join("\n"), id };
          event = "";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (name === "event") event = value;
          else if (name === "data") data.push(value);
          else if (name === "id") id = value;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
