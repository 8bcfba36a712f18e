// The tokenpulse dashboard: wires the live streams, the REST look-ups and the page together.
// Configuration comes from data attributes of <body> (set by the service), so the page needs
// no inline script and runs under a strict Content-Security-Policy.

import { Api, ApiFailure } from "./api.js";
import * as fmt from "./format.js";
import { LiveFeed } from "./live.js";
import { renderSources } from "./sources.js";
import { Ticker } from "./ticker.js";
import { TokenTable } from "./tokens.js";

const $ = (id) => document.getElementById(id);
const config = document.body.dataset;
const staleAfterMs = Number(config.staleAfterMs) || 60_000;
const DETAILS_EVERY_MS = 60_000; // velocity trends of the rows on screen
const SPARK_EVERY_MS = 600_000; // their 7-day price series
const WEEK_MS = 7 * 86_400_000;

const api = new Api({
  auth: config.auth === "true",
  sessions: config.sessions === "true",
  onUnauthorized: (message) => askForKey(message),
});
const ticker = new Ticker({ root: $("ticker"), note: $("pairs-note"), staleAfterMs });
const table = new TokenTable({
  tbody: $("token-rows"),
  headers: document.querySelectorAll("#tokens th[data-sort]"),
  filter: $("filter"),
  staleOnly: $("stale-only"),
  count: $("tokens-count"),
  empty: $("tokens-empty"),
  staleAfterMs,
  onVisible: (id) => details.want(id),
});

/** Per-row look-ups (trends, sparkline), a few at a time, pausing when rate limited. */
const details = {
  queue: new Set(),
  active: 0,
  pausedUntil: 0,
  loaded: new Map(), // id -> {trendsAt, sparkAt}
  want(id) {
    const seen = this.loaded.get(id);
    const now = Date.now();
    if (seen && now - seen.trendsAt < DETAILS_EVERY_MS && now - seen.sparkAt < SPARK_EVERY_MS) return;
    this.queue.add(id);
    this.pump();
  },
  pump() {
    while (this.active < 3 && this.queue.size > 0 && Date.now() >= this.pausedUntil) {
      const id = this.queue.values().next().value;
      this.queue.delete(id);
      this.active += 1;
      this.load(id).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  },
  async load(id) {
    const seen = this.loaded.get(id) ?? { trendsAt: 0, sparkAt: 0 };
    const now = Date.now();
    const path = `/api/v1/tokens/${encodeURIComponent(id)}`;
    try {
      if (now - seen.trendsAt >= DETAILS_EVERY_MS) {
        table.setTrends(id, (await api.get(path)).data.trends);
        seen.trendsAt = now;
      }
      if (now - seen.sparkAt >= SPARK_EVERY_MS) {
        const from = new Date(now - WEEK_MS).toISOString();
        const history = await api.get(`${path}/history`, { from, granularity: "1h", fields: "close" });
        table.setSpark(id, history.data.points.map((point) => point.close));
        seen.sparkAt = now;
      }
      this.loaded.set(id, seen);
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 429) {
        this.pausedUntil = Date.now() + (error.retryAfter ?? 1) * 1000;
        this.queue.add(id);
        setTimeout(() => this.pump(), (error.retryAfter ?? 1) * 1000);
      }
    }
  },
};

// ------------------------------------------------------------------ connection status

const feedStatus = new Map();
function setFeedStatus(name, status) {
  feedStatus.set(name, status);
  const all = [...feedStatus.values()];
  const overall = all.every((s) => s === "live")
    ? "live"
    : all.includes("offline")
      ? "offline"
      : all.includes("reconnecting")
        ? "reconnecting"
        : "connecting";
  const conn = $("conn");
  conn.dataset.state = overall;
  conn.textContent = { live: "Live", offline: "Offline — retrying", reconnecting: "Reconnecting…", connecting: "Connecting…" }[overall];
}

async function afterGiveUp() {
  // A stream the browser gave up on: a REST call tells why (401 asks for a key).
  await api.get("/api/v1/pairs").catch(() => {});
}

const feeds = [
  new LiveFeed({
    url: () => api.streamUrl("/api/v1/ltp/live"),
    event: "ltp_update",
    onUpdate: (pair, state) => ticker.update(pair, state),
    onStatus: (status) => setFeedStatus("ltp", status),
    onGiveUp: afterGiveUp,
  }),
  new LiveFeed({
    url: () => api.streamUrl("/api/v1/tokens/live"),
    event: "token_update",
    onUpdate: (id, state, changes) => table.update(id, state, changes),
    onStatus: (status) => setFeedStatus("tokens", status),
    onGiveUp: afterGiveUp,
  }),
];

// --------------------------------------------------------------------- polled panels

async function loadPairs() {
  try {
    ticker.setPairs((await api.get("/api/v1/pairs")).data);
  } catch {
    // shown by the connection status; tried again on the next round
  }
}

async function loadSources() {
  try {
    const report = (await api.get("/api/v1/sources")).data;
    renderSources($("sources"), $("sources-note"), report, staleAfterMs);
  } catch {
    // likewise
  }
}

async function resyncPrices() {
  try {
    ticker.resync((await api.get("/api/v1/ltp")).ltp ?? []);
  } catch {
    // likewise
  }
}

// -------------------------------------------------------------------------- API key

let asking = null;
/** Show the key dialog until a key works; resolves then. */
function askForKey(message = "") {
  if (!api.auth) return Promise.resolve();
  if (asking) return asking;
  const dialog = $("auth");
  const form = $("auth-form");
  $("auth-error").textContent = message && api.key ? "That key was refused: " + message : "";
  api.forget();
  for (const feed of feeds) feed.stop();
  asking = new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      const key = $("auth-key").value.trim();
      if (!key) return;
      $("auth-submit").disabled = true;
      try {
        api.key = key; // tried before it is kept
        await api.get("/api/v1/pairs");
        await api.useKey(key);
        form.removeEventListener("submit", submit);
        dialog.close();
        asking = null;
        for (const feed of feeds) if (feed.started) feed.restart();
        refreshAll();
        resolve();
      } catch (error) {
        api.forget();
        $("auth-error").textContent =
          error instanceof ApiFailure && error.status === 401 ? "This key was refused." : `Could not check the key: ${error.message}`;
      } finally {
        $("auth-submit").disabled = false;
      }
    };
    form.addEventListener("submit", submit);
  });
  // Without a working key there is nothing to show: Escape does not dismiss the dialog.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  if (!dialog.open) dialog.showModal();
  $("auth-key").focus();
  return asking;
}

function refreshAll() {
  loadPairs();
  loadSources();
}

// ---------------------------------------------------------------------------- start

async function main() {
  $("version").textContent = config.version ? `v${config.version}` : "";
  $("stale-after").textContent = fmt.age(staleAfterMs);
  if (api.auth) {
    const signout = $("signout");
    signout.hidden = false;
    signout.addEventListener("click", () => askForKey());
  }
  if (api.needsKey()) await askForKey();
  else await api.openSession().catch(() => {});
  refreshAll();
  for (const feed of feeds) feed.start();
  setInterval(() => {
    const now = Date.now();
    ticker.tick(now);
    table.tick(now);
  }, 1000);
  setInterval(loadSources, 5000);
  setInterval(loadPairs, 5000); // the aggregate and its venues, where several venues report
  setInterval(resyncPrices, 10_000);
  setInterval(() => table.visibleIds().forEach((id) => details.want(id)), 15_000);
}

main();
