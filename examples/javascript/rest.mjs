// REST from Node (>= 20) with the built-in fetch.
//   TOKENPULSE_URL=http://127.0.0.1:8080 node examples/javascript/rest.mjs
const URL_BASE = process.env.TOKENPULSE_URL ?? "http://127.0.0.1:8080";
const headers = process.env.TOKENPULSE_API_KEY ? { "X-API-Key": process.env.TOKENPULSE_API_KEY } : {};

async function get(path) {
  const response = await fetch(URL_BASE + path, { headers });
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${JSON.stringify(body)}`);
  return body;
}

const { ltp } = await get("/api/v1/ltp?pair=BTC/USD,ETH/USD");
for (const price of ltp) console.log(`${price.pair}: ${price.amount} (${price.source}, ${price.age_ms} ms old)`);
const tokens = await get("/api/v1/tokens?limit=5&sort=market_cap");
for (const t of tokens.data) console.log(`#${t.rank} ${t.symbol}: $${t.price_usd} velocity=${t.velocity}`);
const velocity = await get("/api/v1/tokens/bitcoin/velocity");
console.log("bitcoin velocity:", velocity.data.velocity, "7d trend:", velocity.data.trends["7d"].direction);
