// tokenpulse's Socket.IO stream with the official socket.io-client v4, against the real
// service: `python -m tokenpulse serve` on the bundled replay data (no network), started here.
//
// The interpreter is $TOKENPULSE_PYTHON, default ../../.venv/bin/python from clients/js.
// Run: cd clients/js && npm install --no-package-lock && npm test

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { io } from "socket.io-client";

const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PYTHON = path.resolve(
  PACKAGE_DIR,
  process.env.TOKENPULSE_PYTHON ?? "../../.venv/bin/python",
);
const API_KEY = "js-test-key-0123456789abcdef";
const START_DEADLINE_MS = 30_000;
const DEADLINE_MS = 10_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Poll `check` (sync or async) until it returns a truthy value, or fail at the deadline. */
async function waitFor(check, what, deadlineMs = DEADLINE_MS) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Start `tokenpulse serve` with the replay source on a free port; resolves when it serves. */
async function startService(extraEnv = {}) {
  const port = await freePort();
  const cwd = mkdtempSync(path.join(tmpdir(), "tokenpulse-js-"));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? cwd,
    ...(process.env.PYTHONPATH ? { PYTHONPATH: process.env.PYTHONPATH } : {}),
    SOURCES: "replay",
    REPLAY_SPEED: "600", // each pair updates about 10 times a second
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: "warning",
    SHUTDOWN_TIMEOUT: "5s",
    ...extraEnv,
  };
  const child = spawn(PYTHON, ["-m", "tokenpulse", "serve"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`service exited (${child.exitCode}):\n${output}`);
        try {
          return (await fetch(`${url}/health`)).ok;
        } catch {
          return false;
        }
      },
      "the service to answer /health",
      START_DEADLINE_MS,
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

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
