// Server-Sent Events from Node (>= 20): fetch's body stream, parsed line by line.
//   TOKENPULSE_URL=http://127.0.0.1:8080 node examples/javascript/stream.mjs [COUNT]
// (In a browser, EventSource does this for you: see browser.html. For Socket.IO use the
// official socket.io-client: io(URL, {transports: ["websocket"]}).emit("subscribe_pair", …).)
const URL_BASE = process.env.TOKENPULSE_URL ?? "http://127.0.0.1:8080";
const COUNT = Number(process.argv[2] ?? 5);
const key = process.env.TOKENPULSE_API_KEY;

const controller = new AbortController();
const response = await fetch(`${URL_BASE}/api/v1/ltp/live?pair=BTC/USD,ETH/USD`, {
  headers: { Accept: "text/event-stream", ...(key ? { "X-API-Key": key } : {}) },
  signal: controller.signal,
});
if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);

const state = {};
let received = 0;
let buffer = "";
const decoder = new TextDecoder();
outer: for await (const chunk of response.body) {
  buffer += decoder.decode(chunk, { stream: true });
  let end;
  while ((end = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
    if (event !== "ltp_update" || !data) continue; // comments are keepalives
    const message = JSON.parse(data);
    state[message.id] = { ...state[message.id], ...(message.data ?? message.changes) };
    console.log(`${message.type.padEnd(8)} ${message.id} seq=${message.seq} amount=${state[message.id].amount}`);
    if (++received >= COUNT) break outer;
  }
}
controller.abort();
