// The pure parts of the stream: seq tracking (gaps, duplicates, conflated deltas) and the
// event-stream parser, on hand-written messages.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { GAP, Tracker } from "@tokenpulse/client";

import { readEvents } from "../src/sse.js";

const snapshot = { type: "snapshot", id: "BTC/USD", seq: 5, ts: 1, data: { pair: "BTC/USD", amount: 1, age_ms: 3 } };

describe("Tracker", () => {
  test("a snapshot, then deltas merged into the state", () => {
    const tracker = new Tracker("pair");
    const first = tracker.apply(snapshot);
    assert.deepEqual(first, { kind: "pair", id: "BTC/USD", type: "snapshot", seq: 5, ts: 1, changes: snapshot.data, state: snapshot.data });
    const delta = tracker.apply({ type: "delta", id: "BTC/USD", seq: 6, base_seq: 5, ts: 2, changes: { amount: 2 } });
    assert.equal(delta.type, "delta");
    assert.deepEqual(delta.changes, { amount: 2 });
    assert.deepEqual(delta.state, { pair: "BTC/USD", amount: 2, age_ms: 3 });
  });

  test("a delta that skips a seq is a gap; old and duplicate messages are ignored", () => {
    const tracker = new Tracker("pair");
    tracker.apply(snapshot);
    assert.equal(tracker.apply({ type: "delta", id: "BTC/USD", seq: 5, base_seq: 4, changes: {} }), null);
    assert.equal(tracker.apply({ type: "delta", id: "BTC/USD", seq: 8, base_seq: 7, changes: {} }), GAP);
    assert.equal(tracker.apply({ type: "delta", id: "ETH/USD", seq: 2, base_seq: 1, changes: {} }), GAP, "no snapshot yet");
    // A conflated delta jumps several seqs but builds on the last one seen: not a gap.
    const conflated = tracker.apply({ type: "delta", id: "BTC/USD", seq: 9, base_seq: 5, changes: { amount: 3 } });
    assert.equal(conflated.state.amount, 3);
    tracker.reset();
    assert.equal(tracker.apply({ type: "delta", id: "BTC/USD", seq: 10, base_seq: 9, changes: {} }), GAP);
  });

  test("malformed messages are ignored", () => {
    const tracker = new Tracker("token");
    for (const message of [null, "x", 3, {}, { id: "a" }, { id: 1, seq: 1 }, { id: "a", seq: "1" }]) {
      assert.equal(tracker.apply(message), null, JSON.stringify(message));
    }
  });
});

/** A ReadableStream of the given text chunks. */
function body(...chunks) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

describe("readEvents", () => {
  test("events split across chunks and line endings, comments skipped", async () => {
    const events = [];
    let chunks = 0;
    const stream = body("retry: 2000\n\n: keepalive\n\nevent: ltp_update\nid: 7\nda", "ta: {\"a\":1}\r\n\r", "\nevent: x\ndata: 1\ndata: 2\n\n");
    for await (const event of readEvents(stream, () => (chunks += 1))) events.push(event);
    assert.deepEqual(events, [
      { event: "ltp_update", data: '{"a":1}', id: "7" },
      { event: "x", data: "1\n2", id: "7" },
    ]);
    assert.equal(chunks, 3);
  });

  test("an event without data is not dispatched; one cut off at the end is dropped", async () => {
    const events = [];
    for await (const event of readEvents(body("event: a\n\nevent: b\ndata: 1"))) events.push(event);
    assert.deepEqual(events, []);
  });
});
