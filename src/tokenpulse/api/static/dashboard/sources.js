// Source health from GET /api/v1/sources: state, role, last message age, errors, what each
// serves; down, stale and standby sources marked.

import * as fmt from "./format.js";

/** @param {string} tag @param {string} [className] @param {string} [text] */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** `ok`, `stale`, `down` or `idle` for one source. */
export function healthOf(source, staleAfterMs) {
  const age = source.last_message_age_ms;
  if (source.connected) return Number.isFinite(age) && age > staleAfterMs ? "stale" : "ok";
  if (source.state === "idle" || source.state === "standby" || source.state === "disabled") {
    // A standby source is fine unless it failed lately (a fallback that cannot answer).
    const failedAt = Date.parse(source.last_error_at ?? "");
    return Number.isFinite(failedAt) && Date.now() - failedAt < staleAfterMs ? "down" : "idle";
  }
  return "down";
}

/** Render `report` into `root`; returns how many sources are down or stale. */
export function renderSources(root, note, report, staleAfterMs) {
  const sources = [...(report.sources ?? [])];
  if (report.market && typeof report.market === "object") sources.push({ role: "market data", ...report.market });
  let troubled = 0;
  const nodes = sources.map((source) => {
    const health = healthOf(source, staleAfterMs);
    if (health === "down" || health === "stale") troubled += 1;
    const node = el("div", "source");
    node.dataset.health = health;
    node.dataset.source = source.name;
    const name = el("span", "sname", source.name);
    if (source.role) name.append(el("span", "srole", source.role));
    const label = health === "stale" ? "stale" : health === "idle" ? (source.state || "standby") : source.state || health;
    const badge = el("span", `badge ${health === "ok" ? "" : health}`, label);
    const parts = [];
    parts.push(Number.isFinite(source.last_message_age_ms) ? `last message ${fmt.age(source.last_message_age_ms)} ago` : "no message yet");
    if (source.error_count) parts.push(`${source.error_count} error${source.error_count === 1 ? "" : "s"}`);
    if (source.serving?.length) parts.push(`serves ${source.serving.join(", ")}`);
    else if (Number.isFinite(source.tokens)) parts.push(`${source.tokens} tokens`);
    const detail = el("span", "sdetail", parts.join(" · "));
    node.title = [source.detail, source.last_error ? `last error: ${source.last_error}` : ""].filter(Boolean).join("\n");
    node.append(name, badge, detail);
    return node;
  });
  root.replaceChildren(...nodes);
  note.textContent = troubled ? `${troubled} of ${sources.length} need attention` : `${sources.length} healthy`;
  return troubled;
}
