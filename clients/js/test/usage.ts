// Compiled (never run) by `npm test` through tsc: the package as a TypeScript user sees it.
// A change that breaks these lines breaks users' builds.

import {
  ApiError,
  NotFound,
  RateLimited,
  StreamError,
  TokenpulseClient,
  type PairUpdate,
  type Token,
  type Update,
} from "@tokenpulse/client";

export async function usage(): Promise<number> {
  const client = new TokenpulseClient("http://127.0.0.1:8080", { apiKey: "k", retries: 2 });
  const { prices, errors } = await client.ltp(["BTC/USD"], { maxAgeMs: 5000 });
  let total: number = prices.reduce((sum, p) => sum + p.amount, 0) + errors.length;
  const page = await client.tokens({ limit: 10, sort: "velocity", order: "desc", symbols: ["BTC"] });
  const first: Token | undefined = page.tokens[0];
  total += first?.velocity ?? 0;
  for await (const token of client.iterTokens({ minMarketCap: 1e9 })) total += token.price_usd ?? 0;
  const detail = await client.token("bitcoin", { history: "24h" });
  const direction: "increasing" | "decreasing" | "stable" | null = detail.trends["7d"].direction;
  const history = await client.history("bitcoin", { from: new Date(), granularity: "1h", fields: ["close"] });
  total += history.points.length + (direction ? 1 : 0);
  try {
    await client.velocity("nosuch");
  } catch (error) {
    if (error instanceof RateLimited) total += error.retryAfter ?? 0;
    else if (error instanceof NotFound) total += error.status;
    else if (error instanceof ApiError) total += error.code.length;
  }
  const stream = client.stream({ pairs: ["BTC/USD"], tokens: ["bitcoin"], transport: "sse" });
  const off = stream.on("status", (status) => void status.toUpperCase());
  stream.on("error", (error: StreamError) => void error.code);
  for await (const update of stream) {
    const u: Update = update;
    if (u.kind === "pair") {
      const pair: PairUpdate = u;
      total += pair.state.amount;
    } else {
      total += u.state.market_cap_usd ?? 0;
    }
    break;
  }
  off();
  stream.close();
  return total;
}
