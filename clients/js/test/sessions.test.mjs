// Session tokens (SPEC §8.4) with the official socket.io-client v4 and @tokenpulse/client,
// against the real service with stored API keys (test/service.mjs starts it): a key becomes a
// session token, the token opens Socket.IO (`auth: {token}`) and SSE (`?token=`), refreshes
// without the key, is refused once expired, and a revoked key ends the live connections.
// Run: cd clients/js && npm install && npm test

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import { StreamError, TokenpulseClient } from "@tokenpulse/client";

import { DEADLINE_MS, startService, waitFor } from "./service.mjs";

const ADMIN_KEY = "js-sessions-admin-0123456789abcdef";
const SESSION_TTL_S = 3;

function connect(url, auth) {
  return io(url, { auth, transports: ["websocket"], reconnection: false, timeout: DEADLINE_MS });
}

/** Resolves on `connect`, rejects with the `connect_error`. */
function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

/** The `connect_error` of a connection that must be refused. */
function refusal(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("connected, but should have been refused")));
    socket.once("connect_error", resolve);
  });
}

/** Record the events that end a connection, and its disconnect reason. */
function watchEnd(socket) {
  const seen = { events: [], reason: null };
  for (const name of ["session_expired", "key_revoked"]) socket.on(name, (data) => seen.events.push([name, data]));
  socket.on("disconnect", (reason) => (seen.reason = reason));
  return seen;
}

describe("session tokens with stored keys", () => {
  let service;
  let key;
  const admin = { "X-API-Key": ADMIN_KEY, "Content-Type": "application/json" };

  before(async () => {
    service = await startService({
      AUTH_ENABLED: "true",
      AUTH_API_KEY: ADMIN_KEY,
      AUTH_KEY_PEPPER: "js-sessions-pepper-0123456789abcdef",
      AUTH_SESSION_TTL: `${SESSION_TTL_S}s`,
      RATE_LIMIT_ENABLED: "false",
    });
    const created = await fetch(`${service.url}/api/v1/admin/keys`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name: "js", tier: "pro", role: "reader" }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    key = await created.json();
  });
  after(async () => {
    await service?.stop();
  });

  test("a token from the key streams over Socket.IO, refreshes, and is refused once expired", async () => {
    const client = new TokenpulseClient(service.url, { apiKey: key.key });
    const session = await client.createSession();
    assert.equal(client.sessionToken, session.token);
    assert.ok(session.expiresAt instanceof Date && session.expiresAt > new Date());
    assert.equal(session.raw.key_id, key.key_id);
    assert.equal(session.raw.tier, "pro");

    const socket = connect(service.url, { token: session.token });
    const ended = watchEnd(socket);
    const updates = [];
    socket.on("ltp_update", (message) => updates.push(message));
    try {
      await connected(socket);
      const ack = await socket.timeout(DEADLINE_MS).emitWithAck("subscribe_pair", { pair: "BTC/USD", min_interval_ms: 250 });
      assert.equal(ack.ok, true, JSON.stringify(ack)); // 250 ms: the pro tier's least interval
      await waitFor(() => updates.length >= 2, "a snapshot and an update");
      assert.equal(updates[0].id, "BTC/USD");

      // refreshed without the key: a new token, good for a new lifetime
      const refreshed = await fetch(`${service.url}/api/v1/sessions/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: session.token }),
      });
      assert.equal(refreshed.status, 200, await refreshed.clone().text());
      const renewed = await refreshed.json();
      assert.notEqual(renewed.token, session.token);
      assert.equal(renewed.key_id, key.key_id);
      assert.ok(new Date(renewed.expires_at) >= session.expiresAt);

      // the live connection of the first token ends when it expires, saying why
      await waitFor(() => !socket.connected, "the first token to expire", (SESSION_TTL_S + 5) * 1000);
      assert.deepEqual(ended.events.map(([name]) => name), ["session_expired"]);
      assert.equal(ended.events[0][1].code, "TOKEN_EXPIRED");
      assert.equal(ended.reason, "io server disconnect");
    } finally {
      socket.disconnect();
    }

    const late = connect(service.url, { token: session.token });
    try {
      const error = await refusal(late);
      assert.equal(error.data.code, "UNAUTHORIZED");
      assert.match(error.data.message, /expired/);
    } finally {
      late.disconnect();
    }
    // SSE with the expired ?token= is refused for good, with the same reason
    const lateSse = new TokenpulseClient(service.url, { sessionToken: session.token }).stream({
      transport: "sse",
      pairs: ["BTC/USD"],
    });
    const sseError = await new Promise((resolve) => lateSse.on("error", resolve));
    assert.ok(sseError instanceof StreamError);
    assert.equal(sseError.code, "UNAUTHORIZED");
    assert.match(sseError.message, /expired/);
    assert.equal(lateSse.status, "closed");
  });

  test("revoking the key ends its Socket.IO and SSE connections; its tokens stop working", async () => {
    const client = new TokenpulseClient(service.url, { apiKey: key.key });
    const { token } = await client.createSession();

    const socket = connect(service.url, { token });
    const ended = watchEnd(socket);
    const sse = new TokenpulseClient(service.url, { sessionToken: token }).stream({
      transport: "sse",
      pairs: ["ETH/USD"],
      backoff: { initialMs: 50, maxMs: 200 },
    });
    const sseUpdates = [];
    const sseErrors = [];
    sse.on("update", (update) => sseUpdates.push(update));
    sse.on("error", (error) => sseErrors.push(error));
    try {
      await connected(socket);
      await waitFor(() => sseUpdates.length >= 1, "the SSE snapshot over ?token=");
      assert.equal(sseUpdates[0].id, "ETH/USD");

      const revoked = await fetch(`${service.url}/api/v1/admin/keys/${key.key_id}/revoke`, {
        method: "POST",
        headers: admin,
      });
      assert.equal(revoked.status, 200);
      const revokedAt = Date.now();
      await waitFor(() => !socket.connected, "the Socket.IO connection to end");
      assert.ok(Date.now() - revokedAt < 1000, `ended after ${Date.now() - revokedAt} ms`);
      assert.deepEqual(ended.events, [["key_revoked", ended.events[0][1]]]);
      assert.equal(ended.events[0][1].code, "KEY_REVOKED");
      assert.equal(ended.reason, "io server disconnect");

      // the SSE stream ends too, and reopening it with the token is refused for good
      await waitFor(() => sse.status === "closed", "the SSE stream to end");
      assert.equal(sseErrors.length, 1);
      assert.ok(sseErrors[0] instanceof StreamError);
      assert.equal(sseErrors[0].code, "UNAUTHORIZED");
    } finally {
      socket.disconnect();
      sse.close();
    }

    const again = connect(service.url, { token });
    try {
      assert.equal((await refusal(again)).data.code, "UNAUTHORIZED");
    } finally {
      again.disconnect();
    }
    const refresh = await fetch(`${service.url}/api/v1/sessions/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    assert.equal(refresh.status, 401);
  });
});
