// stream() of @tokenpulse/client over SSE and Socket.IO against the real service: snapshots
// then merged deltas, refusals as StreamError, and a stream that outlives a restart.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import { StreamError, TokenpulseClient } from "@tokenpulse/client";

import { DEADLINE_MS, startService, waitFor } from "./service.mjs";

const API_KEY = "js-stream-key-0123456789abcdef";

/** The first `count` updates of `stream` (then closes it). */
async function take(stream, count) {
  const updates = [];
  const timer = setTimeout(() => stream.close(), DEADLINE_MS);
  for await (const update of stream) {
    updates.push(update);
    if (updates.length >= count) break;
  }
  clearTimeout(timer);
  return updates;
}

for (const transport of ["sse", "socketio"]) {
  describe(`stream() over ${transport}`, () => {
    let service;
    let client;
    before(async () => {
      service = await startService({ RATE_LIMIT_ENABLED: "false" });
      client = new TokenpulseClient(service.url);
      // Tokens exist once the replay has played its first market data.
      await waitFor(async () => (await client.tokens({ limit: 1 })).tokens.length > 0, "tokens");
    });
    after(async () => {
      await service?.stop();
    });

    test("a snapshot per key, then deltas merged into the full state", async () => {
      const stream = client.stream({ transport, pairs: ["btc-usd"], tokens: ["bitcoin"], minIntervalMs: 50 });
      const statuses = [];
      stream.on("status", (status) => statuses.push(status));
      const seen = [];
      stream.on("update", (update) => seen.push(update));
      const updates = await take(stream, 8);
      assert.equal(stream.status, "closed");
      assert.ok(statuses.includes("open"), statuses.join());
      const pairs = seen.filter((u) => u.kind === "pair");
      assert.equal(pairs[0].type, "snapshot");
      assert.equal(pairs[0].id, "BTC/USD");
      assert.equal(pairs[0].state.pair, "BTC/USD");
      assert.ok(pairs.length >= 2, "BTC/USD moves several times a second");
      for (const [before, update] of pairs.slice(0, -1).map((u, i) => [u, pairs[i + 1]])) {
        assert.equal(update.type, "delta");
        assert.ok(update.seq > before.seq);
        assert.equal(update.state.pair, "BTC/USD", "a delta's state is the whole price");
        assert.equal(typeof update.state.amount, "number");
        for (const [field, value] of Object.entries(update.changes)) assert.deepEqual(update.state[field], value);
      }
      const token = seen.find((u) => u.kind === "token");
      assert.equal(token.id, "bitcoin");
      assert.equal(token.type, "snapshot");
      assert.equal(token.state.symbol, "BTC");
      assert.ok(updates.length >= 1 && updates.length <= seen.length, "iteration conflates, never adds");
      assert.equal(stream.gaps, 0);
    });

    test("an unsupported pair ends the stream with StreamError", async () => {
      const stream = client.stream({ transport, pairs: ["DOGE/MOON"] });
      const errors = [];
      stream.on("error", (error) => errors.push(error));
      await assert.rejects(take(stream, 1), (error) => {
        assert.ok(error instanceof StreamError, String(error));
        assert.equal(error.code, "UNSUPPORTED_PAIR");
        return true;
      });
      assert.equal(errors.length, 1);
      assert.equal(stream.status, "closed");
    });
  });
}

/**
 * A fetch whose first event stream loses its `nth` ltp_update on the way (a lossy network
 * between the client and the real service); later streams arrive whole.
 */
function lossyFetch(nth) {
  let streams = 0;
  return async (url, init) => {
    const response = await fetch(url, init);
    if (!String(url).includes("/live") || !response.body || streams++ > 0) return response;
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = "";
    let count = 0;
    const body = response.body.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          buffer += decoder.decode(chunk, { stream: true });
          const events = buffer.split("\n\n");
          buffer = events.pop();
          for (const event of events) {
            if (event.startsWith("event: ltp_update") && ++count === nth) continue;
            controller.enqueue(encoder.encode(`${event}\n\n`));
          }
        },
      }),
    );
    return new Response(body, { status: response.status, headers: response.headers });
  };
}

/** socket.io-client's io, but the socket's first connection loses its `nth` ltp_update. */
function lossyIo(nth) {
  return (url, options) => {
    const socket = io(url, options);
    const on = socket.on.bind(socket);
    let count = 0;
    socket.on = (event, handler) =>
      on(event, event === "ltp_update" ? (message) => ++count !== nth && handler(message) : handler);
    return socket;
  };
}

describe("stream() after a lost message", () => {
  let service;
  before(async () => {
    service = await startService({ RATE_LIMIT_ENABLED: "false" });
  });
  after(async () => {
    await service?.stop();
  });

  for (const transport of ["sse", "socketio"]) {
    test(`${transport}: the seq gap is seen and a fresh snapshot replaces the state`, async () => {
      const client = new TokenpulseClient(service.url, { fetch: lossyFetch(2) });
      const stream = client.stream({ transport, io: lossyIo(2), pairs: ["BTC/USD"], minIntervalMs: 50 });
      const gaps = [];
      stream.on("gap", (gap) => gaps.push(gap));
      const updates = [];
      stream.on("update", (update) => updates.push(update));
      try {
        await waitFor(() => updates.filter((u) => u.type === "snapshot").length >= 2, "a second snapshot");
      } finally {
        stream.close();
      }
      assert.deepEqual(gaps, [{ kind: "pair", id: "BTC/USD" }]);
      assert.equal(stream.gaps, 1);
      assert.equal(updates[0].type, "snapshot");
      assert.equal(updates[1].type, "snapshot", "nothing is applied across the gap");
      assert.ok(updates[1].seq > updates[0].seq);
    });
  }
});

describe("stream() with auth on", () => {
  let service;
  before(async () => {
    service = await startService({ AUTH_ENABLED: "true", AUTH_API_KEY: API_KEY });
  });
  after(async () => {
    await service?.stop();
  });

  for (const transport of ["sse", "socketio"]) {
    test(`${transport}: a wrong key is refused for good; the right one streams`, async () => {
      const refused = new TokenpulseClient(service.url, { apiKey: "wrong" }).stream({ transport, pairs: ["BTC/USD"] });
      await assert.rejects(take(refused, 1), (error) => error instanceof StreamError && error.code === "UNAUTHORIZED");
      const client = new TokenpulseClient(service.url, { apiKey: API_KEY });
      const [first] = await take(client.stream({ transport, pairs: ["BTC/USD"] }), 1);
      assert.equal(first.type, "snapshot");
      assert.equal(first.id, "BTC/USD");
    });
  }
});

describe("stream() across a restart of the service", () => {
  for (const transport of ["sse", "socketio"]) {
    test(`${transport}: reconnects, resubscribes and starts again from a snapshot`, async () => {
      let service = await startService();
      const { port, cwd } = service;
      const client = new TokenpulseClient(service.url);
      const stream = client.stream({ transport, pairs: ["ETH/USD"], backoff: { initialMs: 50, maxMs: 200 } });
      const updates = [];
      const statuses = [];
      stream.on("update", (update) => updates.push(update));
      stream.on("status", (status) => statuses.push(status));
      try {
        await waitFor(() => updates.length >= 2, "the first updates");
        await service.stop({ keep: true });
        await waitFor(() => stream.status === "reconnecting", "the stream to notice");
        const before = updates.length;
        service = await startService({}, { port, cwd });
        await waitFor(() => stream.status === "open" && updates.length > before + 1, "updates after the restart");
        const again = updates.slice(before);
        assert.equal(again[0].type, "snapshot", "a new connection starts from a snapshot");
        assert.equal(again[0].id, "ETH/USD");
        // At least one reconnect (one more if it reached the old process while it drained).
        assert.ok(stream.reconnects >= 1);
        const seen = statuses.filter((s) => s !== "connecting");
        assert.deepEqual(seen.slice(0, 2), ["open", "reconnecting"]);
        assert.equal(seen.at(-1), "open");
      } finally {
        stream.close();
        await service.stop();
      }
    });
  }
});
