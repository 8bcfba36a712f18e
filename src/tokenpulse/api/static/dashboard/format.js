// How the dashboard writes numbers, ages and trends (pure functions).

const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

/** A price with as many decimals as its size needs ($68,923.40, $0.3927, $0.00001234). */
export function price(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : abs >= 0.01 ? 5 : 8;
  const text = value.toLocaleString("en-US", { minimumFractionDigits: abs >= 1000 ? 2 : 2, maximumFractionDigits: digits });
  return `$${text}`;
}

/** Dollars in compact form ($326.6B). */
export function usd(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `$${COMPACT.format(value)}`;
}

/** A percentage with its sign (+1.23 %). */
export function percent(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `${value > 0 ? "+" : ""}${value.toFixed(2)}%`;
}

/** Velocity (volume ÷ market cap, per day) to four significant digits. */
export function velocity(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value.toPrecision(4);
}

/** An age in ms as "420 ms", "12 s", "3 m 05 s", "2 h 10 m". */
export function age(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, "0")} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} m`;
  return `${Math.floor(h / 24)} d`;
}

/** The arrow, CSS class and description of a velocity trend (SPEC §4.4). */
export function trend(window, value) {
  if (!value || value.direction === null || value.direction === undefined) {
    const why = value?.reason ? value.reason.replaceAll("_", " ") : "not loaded yet";
    return { arrow: "·", css: "flat", title: `${window}: ${why}` };
  }
  const change = Number.isFinite(value.change_pct) ? ` (${percent(value.change_pct)})` : "";
  if (value.direction === "increasing") return { arrow: "▲", css: "up", title: `${window}: velocity increasing${change}` };
  if (value.direction === "decreasing") return { arrow: "▼", css: "down", title: `${window}: velocity decreasing${change}` };
  return { arrow: "▶", css: "flat", title: `${window}: velocity stable${change}` };
}
