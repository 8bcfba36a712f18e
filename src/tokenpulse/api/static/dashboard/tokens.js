// The live table of tracked tokens: one row per token, updated cell by cell as deltas arrive,
// sorted and filtered on the client, each value's age counting up with a stale marker.

import * as fmt from "./format.js";
import { sparkline } from "./sparkline.js";

const WINDOWS = ["1h", "4h", "12h", "7d"];
const ASCENDING_FIRST = new Set(["rank", "symbol", "age"]);

/** @param {string} tag @param {string} [className] @param {string} [text] */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Restart a one-shot CSS animation class on `node`. */
function flash(node, className) {
  node.classList.remove("flash-up", "flash-down");
  void node.offsetWidth; // reflow, so the same class animates again
  node.classList.add(className);
}

export class TokenTable {
  /**
   * @param {{tbody: HTMLElement, headers: NodeListOf<HTMLElement>, filter: HTMLInputElement,
   *   staleOnly: HTMLInputElement, count: HTMLElement, empty: HTMLElement, staleAfterMs: number,
   *   onVisible: (id: string) => void}} options
   */
  constructor(options) {
    Object.assign(this, options);
    this.rows = new Map();
    this.sortKey = "rank";
    this.sortDir = 1;
    this.orderDirty = false;
    this.pendingOrder = null;
    this.visible = new Set();
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const id = entry.target.dataset.id;
        if (entry.isIntersecting) {
          this.visible.add(id);
          this.onVisible(id);
        } else {
          this.visible.delete(id);
        }
      }
    });
    for (const th of this.headers) {
      th.tabIndex = 0; // sortable from the keyboard too
      th.addEventListener("click", () => this.sortBy(th.dataset.sort));
      th.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          this.sortBy(th.dataset.sort);
        }
      });
    }
    this.filter.addEventListener("input", () => this.reorder());
    this.staleOnly.addEventListener("change", () => this.reorder());
    this.#markSorted();
  }

  /** Sort by `key`; a second click on the same column reverses the order. */
  sortBy(key) {
    if (key === this.sortKey) this.sortDir = -this.sortDir;
    else {
      this.sortKey = key;
      this.sortDir = ASCENDING_FIRST.has(key) ? 1 : -1;
    }
    this.#markSorted();
    this.reorder();
  }

  #markSorted() {
    for (const th of this.headers) {
      const sorted = th.dataset.sort === this.sortKey;
      th.setAttribute("aria-sort", sorted ? (this.sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  /** A snapshot or delta of token `id` (`state` is the merged whole). */
  update(id, state, changes) {
    let row = this.rows.get(id);
    const isNew = !row;
    if (isNew) row = this.#create(id);
    const before = row.state;
    row.state = state;
    row.at = Date.now();
    this.#fill(row, before);
    if (isNew || this.sortKey in changes) this.orderDirty = true;
    if (isNew && !this.pendingOrder) {
      // A burst of snapshots is placed once, not row by row.
      this.pendingOrder = setTimeout(() => {
        this.pendingOrder = null;
        this.reorder();
      }, 50);
    }
  }

  #create(id) {
    const tr = el("tr");
    tr.dataset.id = id;
    const cells = {
      rank: el("td", "num rank"),
      name: el("td"),
      price: el("td", "num price"),
      change: el("td", "num"),
      cap: el("td", "num"),
      volume: el("td", "num"),
      velocity: el("td", "num"),
      trends: el("td"),
      spark: el("td"),
      age: el("td", "num age"),
    };
    const name = el("div", "tname");
    cells.symbol = el("b");
    cells.fullName = el("small");
    name.append(cells.symbol, cells.fullName);
    cells.name.append(name);
    const trends = el("span", "trends");
    cells.arrows = WINDOWS.map((window) => {
      const arrow = el("span", "flat", "·");
      arrow.title = `${window}: loading`;
      trends.append(arrow);
      return arrow;
    });
    cells.trends.append(trends);
    cells.spark.append(el("span", "spark-none", "…"));
    tr.append(cells.rank, cells.name, cells.price, cells.change, cells.cap, cells.volume, cells.velocity, cells.trends, cells.spark, cells.age);
    const row = { id, tr, cells, state: null, at: 0, trends: null };
    this.rows.set(id, row);
    this.tbody.append(tr);
    this.observer.observe(tr);
    this.empty.hidden = true;
    return row;
  }

  #fill(row, before) {
    const { state, cells } = row;
    cells.rank.textContent = state.rank ?? "—";
    cells.symbol.textContent = state.symbol ?? row.id;
    cells.fullName.textContent = state.name ?? "";
    cells.price.textContent = fmt.price(state.price_usd);
    if (before && before.price_usd !== state.price_usd && Number.isFinite(before.price_usd)) {
      flash(cells.price, state.price_usd > before.price_usd ? "flash-up" : "flash-down");
    }
    const change = state.percent_change_24h;
    cells.change.textContent = fmt.percent(change);
    cells.change.className = `num ${change > 0 ? "up" : change < 0 ? "down" : "flat"}`;
    cells.cap.textContent = fmt.usd(state.market_cap_usd);
    cells.volume.textContent = fmt.usd(state.volume_24h_usd);
    cells.velocity.textContent = fmt.velocity(state.velocity);
    const flags = state.quality?.flags ?? [];
    cells.velocity.title = flags.length ? `flags: ${flags.join(", ")}` : "volume ÷ market cap, per day";
    row.tr.title = `${state.name ?? row.id} · source ${state.source ?? "?"}`;
    this.#age(row, Date.now());
  }

  /** Velocity trends of token `id` (from GET /api/v1/tokens/{id}). */
  setTrends(id, trends) {
    const row = this.rows.get(id);
    if (!row) return;
    row.trends = trends;
    WINDOWS.forEach((window, i) => {
      const { arrow, css, title } = fmt.trend(window, trends?.[window]);
      const node = row.cells.arrows[i];
      node.textContent = arrow;
      node.className = css;
      node.title = title;
    });
  }

  /** The 7-day price series of token `id` (from GET /api/v1/tokens/{id}/history). */
  setSpark(id, values) {
    const row = this.rows.get(id);
    if (row) row.cells.spark.replaceChildren(sparkline(values));
  }

  #ageOf(row, now) {
    const base = row.state?.age_ms;
    return Number.isFinite(base) ? base + (now - row.at) : null;
  }

  #age(row, now) {
    const age = this.#ageOf(row, now);
    const stale = Boolean(row.state?.stale) || (age !== null && age > this.staleAfterMs);
    row.stale = stale;
    row.cells.age.textContent = fmt.age(age);
    if (stale) row.cells.age.append(el("span", "stale-tag", "stale"));
    row.tr.classList.toggle("is-stale", stale);
  }

  /** Every second: ages, stale markers, and the order if a sorted value changed (rows move
   * at most once a second, so the table stays readable). */
  tick(now = Date.now()) {
    for (const row of this.rows.values()) this.#age(row, now);
    if (this.orderDirty || this.sortKey === "age") this.reorder();
  }

  #value(row, now) {
    if (this.sortKey === "age") return this.#ageOf(row, now);
    if (this.sortKey === "symbol") return (row.state?.symbol ?? row.id).toLowerCase();
    return row.state?.[this.sortKey] ?? null;
  }

  /** Filter and sort the rows. */
  reorder() {
    const now = Date.now();
    this.orderDirty = false;
    const needle = this.filter.value.trim().toLowerCase();
    const staleOnly = this.staleOnly.checked;
    const rows = [...this.rows.values()];
    let shown = 0;
    for (const row of rows) {
      const text = `${row.state?.symbol ?? ""} ${row.state?.name ?? ""} ${row.id}`.toLowerCase();
      const hide = (needle && !text.includes(needle)) || (staleOnly && !row.stale);
      row.tr.hidden = Boolean(hide);
      if (!hide) shown += 1;
    }
    const dir = this.sortDir;
    const keyed = rows.map((row) => [this.#value(row, now), row]);
    keyed.sort(([a], [b]) => {
      if (a === b) return 0;
      if (a === null || a === undefined) return 1; // missing values last, either way
      if (b === null || b === undefined) return -1;
      return (a < b ? -1 : 1) * dir;
    });
    const ordered = keyed.map(([, row]) => row.tr);
    const current = [...this.tbody.children];
    if (ordered.some((tr, i) => current[i] !== tr)) this.tbody.append(...ordered);
    const total = rows.length;
    this.count.textContent = shown === total ? `${total} tokens` : `${shown} of ${total} tokens`;
  }

  /** Ids of the rows on screen (their details are kept fresh). */
  visibleIds() {
    return [...this.visible];
  }
}
