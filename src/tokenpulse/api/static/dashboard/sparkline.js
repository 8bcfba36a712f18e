// A small SVG line of a price series (drawn with DOM calls: no inline markup or style).

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 110;
const HEIGHT = 28;
const PAD = 2;

/** An <svg class="spark up|down"> of `values`, or a "no data" label when fewer than 2. */
export function sparkline(values) {
  const points = values.filter((v) => Number.isFinite(v));
  if (points.length < 2) {
    const none = document.createElement("span");
    none.className = "spark-none";
    none.textContent = points.length === 1 ? "1 point" : "no history yet";
    return none;
  }
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min || 1;
  const step = (WIDTH - 2 * PAD) / (points.length - 1);
  const coords = points.map((v, i) => {
    const x = PAD + i * step;
    const y = HEIGHT - PAD - ((v - min) / span) * (HEIGHT - 2 * PAD);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("class", `spark ${points.at(-1) >= points[0] ? "up" : "down"}`);
  svg.setAttribute("role", "img");
  const change = ((points.at(-1) - points[0]) / points[0]) * 100;
  svg.setAttribute("aria-label", `7-day price ${change >= 0 ? "up" : "down"} ${Math.abs(change).toFixed(1)}%`);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(line);
  return svg;
}
