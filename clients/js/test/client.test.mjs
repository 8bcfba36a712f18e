// The REST calls of @tokenpulse/client against the real service (replay data, no network).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  ApiError,
  BadRequest,
  LtpResult,
  NetworkError,
  NotFound,
  RateLimited,
  ServerError,
  StaleData,
  TokenpulseClient,
  TokenpulseError,
  Unauthorized,
} from "@tokenpulse/client";

import { freePort, startService, waitFor } from "./service.mjs";

const API_KEY = "js-client-key-0123456789abcdef";

describe("REST calls, auth off", () => {
  let service;
  let client;
  before(async () => {
    service = await startService({ RATE_LIMIT_ENABLED: "false" });
    client = new TokenpulseClient(service.url);
    // The replay has played its first tokens once the list is not empty.
    await waitFor(async () => (await client.tokens({ limit: 1 })).tokens.length > 0, "tokens");
  });
  after(async () => {
    await service?.stop();
  });

  test("ltp: prices in request order with their freshness", async () => {
    const result = await client.ltp(["eth-usd", "BTC/USD"]);
    assert.ok(result instanceof LtpResult);
    assert.deepEqual(
      result.prices.map((p) => p.pair),
      ["ETH/USD", "BTC/USD"],
    );
    const btc = result.get("BTC/USD");
    assert.equal(typeof btc.amount, "number");
    assert.ok(btc.amount > 0);
    assert.equal(btc.source, "replay");
    assert.equal(typeof btc.age_ms, "number");
    assert.equal(btc.stale, false);
    assert.deepEqual(result.errors, []);
    assert.equal(result.get("LTC/USD"), undefined);
  });

  test("ltp: every supported pair without arguments; 206 reports the failing pair", async () => {
    const all = await client.ltp();
    assert.deepEqual(all.prices.map((p) => p.pair).sort(), ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]);
    const partial = await client.ltp("BTC/USD,DOGE/MOON");
    assert.deepEqual(
      partial.prices.map((p) => p.pair),
      ["BTC/USD"],
    );
    assert.equal(partial.errors.length, 1);
    assert.equal(partial.errors[0].code, "UNSUPPORTED_PAIR");
  });

  test("ltp: no valid pair is a BadRequest; max_age_ms is StaleData with retryAfter", async () => {
    await assert.rejects(client.ltp(["DOGE/MOON"]), (error) => {
      assert.ok(error instanceof BadRequest && error instanceof ApiError && error instanceof TokenpulseError);
      assert.equal(error.status, 400);
      assert.equal(error.code, "UNSUPPORTED_PAIR");
      assert.equal(typeof error.requestId, "string");
      return true;
    });
    // A value can be under a millisecond old at the moment of the call (the replay updates
    // about 10 times a second): ask again until one is older, as nearly every call finds.
    let stale;
    for (let attempt = 0; attempt < 20 && stale === undefined; attempt++) {
      stale = await client.ltp(["BTC/USD"], { maxAgeMs: 1 }).then(() => undefined, (error) => error);
    }
    assert.ok(stale instanceof StaleData, String(stale));
    assert.equal(stale.status, 503);
    assert.equal(stale.code, "STALE_DATA");
    assert.ok(stale.retryAfter >= 1);
  });

  test("cached, and refresh's failure as a typed ServerError", async () => {
    const cached = await client.cached();
    assert.ok(cached.prices.length >= 1);
    // SOURCES=replay has no Kraken REST to refresh from: 502 PRICE_FETCH_ERROR.
    await assert.rejects(client.refresh(["BTC/USD"]), (error) => {
      assert.ok(error instanceof ServerError);
      assert.equal(error.status, 502);
      assert.equal(error.code, "PRICE_FETCH_ERROR");
      assert.ok(Array.isArray(error.body.errors));
      return true;
    });
  });

  test("pairs, sources, health, ready", async () => {
    const pairs = await client.pairs();
    const btc = pairs.find((p) => p.pair === "BTC/USD");
    assert.equal(btc.base, "BTC");
    assert.equal(btc.providers.kraken.rest, "XXBTZUSD");
    const sources = await client.sources();
    const replay = sources.sources.find((s) => s.name === "replay");
    assert.equal(replay.connected, true);
    assert.equal(sources.pairs["BTC/USD"].source, "replay");
    assert.equal((await client.health()).status, "healthy");
    const ready = await client.ready();
    assert.equal(ready.ready, true);
    assert.equal(ready.status, "ready");
  });

  test("tokens: typed parameters, sorted pages, an unknown parameter refused", async () => {
    const page = await client.tokens({ limit: 5, sort: "velocity", order: "desc" });
    assert.equal(page.tokens.length, 5);
    assert.equal(page.pagination.limit, 5);
    const velocities = page.tokens.map((t) => t.velocity);
    assert.deepEqual(
      velocities,
      [...velocities].sort((a, b) => b - a),
    );
    const two = await client.tokens({ symbols: ["BTC", "ETH"] });
    assert.deepEqual(two.tokens.map((t) => t.id).sort(), ["bitcoin", "ethereum"]);
    await assert.rejects(client.tokens({ min_market_cap: 1 }), TypeError);
    await assert.rejects(client.tokens({ limit: 0 }), (error) => error instanceof BadRequest);
  });

  test("iterTokens follows the cursor through every page", async () => {
    const { pagination } = await client.tokens({ limit: 1 });
    const ids = [];
    for await (const token of client.iterTokens({ limit: 40 })) ids.push(token.id);
    assert.equal(new Set(ids).size, ids.length, "no token twice");
    assert.ok(ids.length >= pagination.total - 5 && ids.length > 40, `${ids.length} of ${pagination.total}`);
  });

  test("token, velocity and history of one token; NotFound for an unknown one", async () => {
    const token = await client.token("BTC");
    assert.equal(token.id, "bitcoin");
    assert.deepEqual(Object.keys(token.trends).sort(), ["12h", "1h", "4h", "7d"]);
    const velocity = await client.velocity("bitcoin");
    assert.equal(velocity.formula, "volume_24h_usd / market_cap_usd");
    assert.equal(typeof velocity.velocity, "number");
    const week = { from: new Date(Date.now() - 7 * 86_400_000), granularity: "1h", fields: ["close"] };
    // History is backfilled from the replay's recorded days shortly after the start.
    const history = await waitFor(async () => {
      const answer = await client.history("bitcoin", week);
      return answer.points.length > 0 && answer;
    }, "bitcoin's history");
    assert.equal(history.granularity, "1h");
    assert.deepEqual(Object.keys(history.points[0]).sort(), ["close", "t"]);
    await assert.rejects(client.token("no-such-token"), (error) => {
      assert.ok(error instanceof NotFound);
      assert.equal(error.code, "TOKEN_NOT_FOUND");
      return true;
    });
  });

  test("a service that is not there is a NetworkError", async () => {
    const nobody = new TokenpulseClient(`http://127.0.0.1:${await freePort()}`, { timeoutMs: 2000 });
    await assert.rejects(nobody.health(), (error) => error instanceof NetworkError && !error.timedOut);
  });
});

describe("REST calls, auth on and a small rate limit", () => {
  let service;
  before(async () => {
    service = await startService({
      AUTH_ENABLED: "true",
      AUTH_API_KEY: API_KEY,
      RATE_LIMIT_CAPACITY: "3",
      RATE_LIMIT_REFILL_RATE: "2",
    });
  });
  after(async () => {
    await service?.stop();
  });

  test("no key, or a wrong one, is Unauthorized", async () => {
    for (const apiKey of [undefined, "wrong"]) {
      await assert.rejects(new TokenpulseClient(service.url, { apiKey }).pairs(), (error) => {
        assert.ok(error instanceof Unauthorized, String(error));
        assert.equal(error.code, "UNAUTHORIZED");
        return true;
      });
    }
  });

  test("past the limit: RateLimited with retryAfter; with retries, the call waits and succeeds", async () => {
    const client = new TokenpulseClient(service.url, { apiKey: API_KEY });
    let limited;
    for (let i = 0; i < 10 && !limited; i += 1) {
      try {
        await client.pairs();
      } catch (error) {
        limited = error;
      }
    }
    assert.ok(limited instanceof RateLimited, String(limited));
    assert.equal(limited.status, 429);
    assert.ok(limited.retryAfter > 0);

    const patient = new TokenpulseClient(service.url, { apiKey: API_KEY, retries: 5 });
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map(() => patient.pairs()));
    assert.ok(results.every((pairs) => pairs.length === 4));
  });
});
