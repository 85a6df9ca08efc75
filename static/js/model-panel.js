// The model panel: accuracy, training curves and the confusion matrix, drawn as SVG.

import { modelInfo } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export async function renderModelPanel() {
  const summary = document.getElementById("model-summary");
  let meta;
  try {
    meta = await modelInfo();
  } catch (err) {
    summary.textContent = `Could not load the model's report: ${err.message}`;
    return false;
  }
  const t = meta.training || {};
  summary.innerHTML = "";
  const acc = document.createElement("strong");
  acc.textContent = `${(meta.test_accuracy * 100).toFixed(2)}%`;
  summary.append(
    acc,
    ` accuracy on the ${meta.test_images.toLocaleString()} MNIST test digits · ` +
      `${meta.parameters.toLocaleString()} parameters · trained for ${meta.history.length} epochs ` +
      `in ${Math.round(t.seconds / 60 * 10) / 10} min on ${t.device} · version ${meta.version}`,
  );
  drawCurves(document.getElementById("curves"), meta.history);
  drawConfusion(document.getElementById("confusion"), meta.confusion_matrix);
  return true;
}

function drawCurves(svg, history) {
  svg.replaceChildren();
  const W = 420, H = 240, L = 50, R = 44, T = 34, B = 34;
  const n = history.length;
  const x = (i) => L + (n === 1 ? 0 : (i / (n - 1)) * (W - L - R));
  const accs = history.map((h) => h.test_accuracy * 100);
  const losses = history.map((h) => h.train_loss);
  const aLo = Math.floor(Math.min(...accs) * 2) / 2, aHi = 100;
  const lHi = Math.max(...losses) * 1.05, lLo = 0;
  const ya = (a) => T + ((aHi - a) / (aHi - aLo)) * (H - T - B);
  const yl = (l) => T + ((lHi - l) / (lHi - lLo)) * (H - T - B);
  svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  for (let k = 0; k <= 4; k++) {
    const a = aLo + ((aHi - aLo) * k) / 4;
    svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: ya(a), y2: ya(a), "stroke-opacity": 0.5 }));
    svg.append(el("text", { x: L - 6, y: ya(a) + 4, "text-anchor": "end" }, `${a.toFixed(1)}%`));
    const l = lLo + ((lHi - lLo) * k) / 4;
    svg.append(el("text", { x: W - R + 6, y: yl(l) + 4 }, l.toFixed(2)));
  }
  history.forEach((h, i) => {
    if (n <= 20 || i % Math.ceil(n / 10) === 0)
      svg.append(el("text", { x: x(i), y: H - B + 16, "text-anchor": "middle" }, String(h.epoch)));
  });
  svg.append(el("text", { x: (W - R + L) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  const path = (ys) => ys.map((y, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y.toFixed(1)}`).join("");
  svg.append(el("path", { class: "loss", d: path(losses.map(yl)) }, undefined));
  svg.append(el("path", { class: "accuracy", d: path(accs.map(ya)) }));
  const legend = el("g", { transform: `translate(${L},10)` });
  legend.append(el("line", { class: "accuracy", x1: 0, x2: 18, y1: 0, y2: 0 }), el("text", { x: 24, y: 4 }, "test accuracy (left)"));
  legend.append(el("line", { class: "loss", x1: 170, x2: 188, y1: 0, y2: 0 }), el("text", { x: 194, y: 4 }, "training loss (right)"));
  svg.append(legend);
}

function drawConfusion(svg, matrix) {
  svg.replaceChildren();
  const S = 300, L = 24, T = 24, cell = (S - L - 4) / 10;
  const rowSums = matrix.map((row) => row.reduce((a, b) => a + b, 0) || 1);
  const offMax = Math.max(1, ...matrix.flatMap((row, i) => row.filter((_, j) => j !== i)));
  for (let d = 0; d < 10; d++) {
    svg.append(el("text", { x: L + cell * (d + 0.5), y: T - 8, "text-anchor": "middle" }, String(d)));
    svg.append(el("text", { x: L - 8, y: T + cell * (d + 0.5) + 4, "text-anchor": "end" }, String(d)));
  }
  matrix.forEach((row, i) => row.forEach((count, j) => {
    // Diagonal cells in the accent colour by recall; errors in red, scaled to the worst one.
    const diag = i === j;
    const strength = diag ? count / rowSums[i] : Math.sqrt(count / offMax);
    const rect = el("rect", {
      class: diag ? "hit" : "miss", x: L + j * cell, y: T + i * cell, width: cell - 1, height: cell - 1, rx: 2,
      "fill-opacity": diag ? 0.25 + 0.75 * strength : count ? 0.12 + 0.88 * strength : 0.04,
    });
    rect.append(el("title", {}, `true ${i}, predicted ${j}: ${count}`));
    svg.append(rect);
    if (count && (diag || cell > 20)) {
      svg.append(el("text", { class: "cell-text", x: L + (j + 0.5) * cell, y: T + (i + 0.5) * cell, fill: diag ? "#fff" : "currentColor" }, String(count)));
    }
  }));
}
