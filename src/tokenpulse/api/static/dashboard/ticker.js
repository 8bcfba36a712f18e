// The LTP ticker: a card per supported pair with the live price, its direction, source and
// age; when /api/v1/pairs reports an aggregate across venues, its price and each venue's.

import * as fmt from "./format.js";

/** @param {string} tag @param {string} [className] @param {string} [text] */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function number(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return Number.isFinite(n) ? n : null;
}

/**
 * The aggregate of a /api/v1/pairs entry, read generically: `{price, venues: [{name, price,
 * weight, used, reason}]}`, or null when there is none.
 */
export function aggregateOf(info) {
  const aggregate = info?.aggregate;
  if (!aggregate || typeof aggregate !== "object") return null;
  let venues = aggregate.venues ?? info.venues ?? [];
  if (!Array.isArray(venues)) venues = Object.entries(venues).map(([name, v]) => ({ name, ...v }));
  return {
    price: number(aggregate.price ?? aggregate.amount ?? aggregate.value),
    venues: venues.map((v) => ({
      name: String(v.venue ?? v.name ?? v.source ?? "?"),
      price: number(v.price ?? v.amount),
      weight: number(v.weight),
      used: v.used ?? !(v.excluded ?? false),
      reason: v.reason ?? v.excluded_reason ?? null,
    })),
  };
}

export class Ticker {
  /** @param {{root: HTMLElement, note: HTMLElement, staleAfterMs: number}} options */
  constructor({ root, note, staleAfterMs }) {
    this.root = root;
    this.note = note;
    this.staleAfterMs = staleAfterMs;
    this.cards = new Map();
  }

  #card(pair) {
    let card = this.cards.get(pair);
    if (card) return card;
    const node = el("article", "pair");
    node.dataset.pair = pair;
    const row1 = el("div", "row1");
    const sym = el("span", "sym", pair);
    const dir = el("span", "dir flat");
    sym.append(dir);
    const source = el("span", "badge idle", "waiting");
    row1.append(sym, source);
    const price = el("div", "price", "—");
    const meta = el("div", "meta");
    const venue = el("span", "venue");
    const age = el("span", "age", "—");
    meta.append(venue, age);
    const venues = el("div", "venues");
    venues.hidden = true;
    node.append(row1, price, meta, venues);
    this.root.append(node);
    card = { node, dir, source, price, venue, age, venues, state: null, at: 0, timer: null };
    this.cards.set(pair, card);
    return card;
  }

  /** The supported pairs, in the service's order, with their providers and aggregate. */
  setPairs(pairs) {
    for (const info of pairs) {
      const card = this.#card(info.pair);
      const providers = Object.keys(info.providers ?? {});
      card.venue.textContent = providers.length ? `venues: ${providers.join(", ")}` : "";
      const aggregate = aggregateOf(info);
      card.venues.hidden = !aggregate;
      if (aggregate) {
        const lines = [el("div", "", "")];
        lines[0].append(el("span", "", "aggregate"), el("b", "", fmt.price(aggregate.price)));
        for (const v of aggregate.venues) {
          const line = el("div", v.used ? "" : "excluded");
          const weight = v.weight === null ? "" : ` · ${(v.weight * 100).toFixed(0)}%`;
          line.append(el("span", "", `${v.name}${v.used ? "" : ` (${v.reason ?? "excluded"})`}`), el("span", "", `${fmt.price(v.price)}${weight}`));
          lines.push(line);
        }
        card.venues.replaceChildren(...lines);
      }
      this.root.append(card.node); // keep the service's order
    }
    this.note.textContent = `${pairs.length} pairs`;
  }

  /** A snapshot or delta of `pair` (`state` is the merged whole price). */
  update(pair, state) {
    const card = this.#card(pair);
    const before = card.state?.amount;
    card.state = state;
    card.at = Date.now();
    card.price.textContent = fmt.price(state.amount);
    if (Number.isFinite(before) && before !== state.amount) {
      const up = state.amount > before;
      card.dir.textContent = up ? "▲" : "▼";
      card.dir.className = `dir ${up ? "up" : "down"}`;
      card.node.classList.remove("tick-up", "tick-down");
      card.node.classList.add(up ? "tick-up" : "tick-down");
      clearTimeout(card.timer);
      card.timer = setTimeout(() => card.node.classList.remove("tick-up", "tick-down"), 700);
    }
    card.source.textContent = state.source ?? "?";
    this.#age(card, card.at);
  }

  #age(card, now) {
    if (!card.state) return;
    const base = card.state.age_ms;
    const age = Number.isFinite(base) ? base + (now - card.at) : null;
    const stale = Boolean(card.state.stale) || (age !== null && age > this.staleAfterMs);
    card.age.textContent = fmt.age(age);
    if (stale) card.age.append(el("span", "stale-tag", "stale"));
    card.node.classList.toggle("is-stale", stale);
    card.source.className = `badge ${stale ? "stale" : ""}`;
  }

  /** Every second: ages and stale markers. */
  tick(now = Date.now()) {
    for (const card of this.cards.values()) this.#age(card, now);
  }

  /** Values from GET /api/v1/ltp: fresher ages for quiet pairs (no message when nothing changes). */
  resync(prices) {
    for (const price of prices) {
      const card = this.cards.get(price.pair);
      if (!card?.state || (price.received_at ?? "") < (card.state.received_at ?? "")) continue;
      this.update(price.pair, { ...card.state, ...price });
    }
  }
}
