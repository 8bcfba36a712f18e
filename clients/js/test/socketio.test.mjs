// tokenpulse's Socket.IO stream with the official socket.io-client v4, against the real
// service (test/service.mjs starts it on the bundled replay data).
// Run: cd clients/js && npm install && npm test

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import { DEADLINE_MS, startService, waitFor } from "./service.mjs";

const API_KEY = "js-test-key-0123456789abcdef";

function connect(url, auth) {
  return io(url, { auth, transports: ["websocket"], reconnection: false, timeout: DEADLINE_MS });
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

describe("Socket.IO streaming, auth off", () => {
  let service;
  before(async () => {
    service = await startService();
  });
  after(async () => {
    await service?.stop();
  });

  test("subscribe_pair: ack, then a snapshot, then deltas with increasing seq", async () => {
    const socket = connect(service.url);
    const updates = [];
    socket.on("ltp_update", (message) => updates.push(message));
    try {
      await connected(socket);
      const ack = await socket
        .timeout(DEADLINE_MS)
        .emitWithAck("subscribe_pair", { pair: "btc-usd", min_interval_ms: 50 });
      assert.equal(ack.ok, true);
      assert.deepEqual(ack.subscribed, ["BTC/USD"]);
      assert.equal(typeof ack.resume, "string");

      await waitFor(() => updates.length >= 4, "a snapshot and three deltas");
      const [snapshot, ...deltas] = updates;
      assert.equal(snapshot.type, "snapshot");
      assert.equal(snapshot.id, "BTC/USD");
      assert.equal(snapshot.data.pair, "BTC/USD");
      assert.equal(typeof snapshot.data.amount, "number");
      assert.ok(Math.abs(Date.now() - snapshot.ts) < 60_000, "ts is the server's send time in ms");
      let last = snapshot.seq;
      for (const delta of deltas) {
        assert.equal(delta.type, "delta");
        assert.equal(delta.id, "BTC/USD");
        assert.ok(delta.seq > last, `seq ${delta.seq} after ${last}`);
        assert.equal(delta.base_seq, last, "each delta applies to the state before it");
        assert.ok(!("pair" in delta.changes), "a delta carries only changed fields");
        last = delta.seq;
      }
    } finally {
      socket.disconnect();
    }
  });

  test("bad payloads are refused with ok:false and a code", async () => {
    const socket = connect(service.url);
    try {
      await connected(socket);
      const cases = [
        [{ pairs: "BTC/USD" }, "INVALID_PARAMETER"],
        ["BTC/USD", "INVALID_PARAMETER"],
        [{ pair: "BTC/USD", min_interval_ms: -1 }, "INVALID_PARAMETER"],
        [{ pair: "DOGE/MOON" }, "UNSUPPORTED_PAIR"],
      ];
      for (const [payload, code] of cases) {
        const ack = await socket.timeout(DEADLINE_MS).emitWithAck("subscribe_pair", payload);
        assert.equal(ack.ok, false, JSON.stringify(payload));
        assert.equal(ack.error.code, code, JSON.stringify(payload));
        assert.equal(typeof ack.error.message, "string");
      }
      assert.equal(socket.connected, true, "a bad request does not cost the connection");
    } finally {
      socket.disconnect();
    }
  });
});

describe("Socket.IO streaming, auth on", () => {
  let service;
  before(async () => {
    service = await startService({ AUTH_ENABLED: "true", AUTH_API_KEY: API_KEY });
  });
  after(async () => {
    await service?.stop();
  });

  for (const [name, auth] of [
    ["no key", undefined],
    ["a wrong key", { api_key: "wrong" }],
  ]) {
    test(`${name}: connect_error with code UNAUTHORIZED`, async () => {
      const socket = connect(service.url, auth);
      try {
        const error = await new Promise((resolve, reject) => {
          socket.once("connect", () => reject(new Error("connected without a valid key")));
          socket.once("connect_error", resolve);
        });
        assert.equal(error.data.code, "UNAUTHORIZED");
        assert.equal(typeof error.message, "string");
        assert.equal(socket.connected, false);
      } finally {
        socket.disconnect();
      }
    });
  }

  test("the right key connects and subscribes", async () => {
    const socket = connect(service.url, { api_key: API_KEY });
    try {
      await connected(socket);
      const ack = await socket.timeout(DEADLINE_MS).emitWithAck("subscribe_pair", { pair: "ETH/USD" });
      assert.equal(ack.ok, true);
    } finally {
      socket.disconnect();
    }
  });
});
