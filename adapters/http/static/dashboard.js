// The dashboard: fetches /stats and /model from this server and draws them as inline SVG.
// No dependencies and nothing from elsewhere. Every error lands in #errors, so that a person
// (and the browser test) can see it; all text goes in through textContent, never as HTML.
"use strict";

const KEY_STORAGE = "sklearn-serve-api-key";
const SVG = "http://www.w3.org/2000/svg";
const errors = [];

function report(message) {
  errors.push(String(message));
  const list = document.getElementById("errors");
  if (!list) return;
  const item = document.createElement("li");
  item.textContent = String(message);
  list.appendChild(item);
  list.hidden = false;
}

window.addEventListener("error", (event) => report(`error: ${event.message} (${event.filename}:${event.lineno})`));
window.addEventListener("unhandledrejection", (event) => report(`unhandled rejection: ${event.reason}`));
document.addEventListener("securitypolicyviolation", (event) => report(`blocked by CSP: ${event.blockedURI}`));
const consoleError = console.error.bind(console);
console.error = (...args) => {
  report(args.join(" "));
  consoleError(...args);
};

// ---- small helpers ----

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return String(Number(Number(value).toFixed(digits)));
}

function pct(value) {
  return value === null || value === undefined ? "—" : `${(100 * value).toFixed(1)} %`;
}

function replace(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children);
  return node;
}

function setStatus(text) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.hidden = !text;
}

// ---- charts ----

const W = 640;
const H = 260;
const PAD = { left: 48, right: 48, top: 14, bottom: 34 };

function frame(caption, width = W, height = H) {
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": caption });
  svg.appendChild(svgEl("title", {}, caption));
  return svg;
}

function axisLabel(svg, x, y, text, anchor = "middle", cls = "axis") {
  svg.appendChild(svgEl("text", { x, y, "text-anchor": anchor, class: cls }, text));
}

function unitSquare(title, xLabel, yLabel) {
  // A square chart of [0, 1] x [0, 1] with a dashed diagonal; returns the svg and a mapper.
  const size = 300;
  const pad = 40;
  const svg = frame(title, size + pad + 12, size + pad + 12);
  const x = (v) => pad + v * size;
  const y = (v) => 12 + (1 - v) * size;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.appendChild(svgEl("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(1), class: "grid" }));
    svg.appendChild(svgEl("line", { x1: x(0), x2: x(1), y1: y(t), y2: y(t), class: "grid" }));
    axisLabel(svg, x(t), y(0) + 14, String(t));
    axisLabel(svg, x(0) - 6, y(t) + 4, String(t), "end");
  }
  svg.appendChild(svgEl("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "diagonal" }));
  axisLabel(svg, x(0.5), y(0) + 30, xLabel);
  const label = svgEl("text", { x: 12, y: y(0.5), "text-anchor": "middle", class: "axis",
                                 transform: `rotate(-90 12 ${y(0.5)})` }, yLabel);
  svg.appendChild(label);
  return { svg, x, y };
}

function drawDaily(daily) {
  const chart = document.getElementById("daily-chart");
  if (!daily.length) {
    chart.replaceChildren(el("p", { class: "empty" }, "No predictions in this period."));
    return;
  }
  const svg = frame("Predictions (bars) and accuracy (line) per UTC day");
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const most = Math.max(1, ...daily.map((d) => d.predictions));
  const band = innerW / daily.length;
  const x = (i) => PAD.left + i * band + band / 2;
  const yCount = (v) => PAD.top + innerH * (1 - v / most);
  const yRate = (v) => PAD.top + innerH * (1 - v);
  for (const t of [0, 0.5, 1]) {
    svg.appendChild(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: yRate(t), y2: yRate(t), class: "grid" }));
    axisLabel(svg, PAD.left - 6, yRate(t) + 4, fmt(Math.round(most * t)), "end");
    axisLabel(svg, W - PAD.right + 6, yRate(t) + 4, pct(t), "start", "axis accuracy");
  }
  daily.forEach((d, i) => {
    const barW = Math.max(1, Math.min(40, band * 0.7));
    const bar = svgEl("rect", { x: x(i) - barW / 2, y: yCount(d.predictions), width: barW,
                               height: PAD.top + innerH - yCount(d.predictions), class: "bar" });
    bar.appendChild(svgEl("title", {}, `${d.day}: ${d.predictions} predictions, ${d.outcomes} outcomes, ` +
                                       `accuracy ${pct(d.accuracy)}`));
    svg.appendChild(bar);
  });
  const points = daily.map((d, i) => [d, i]).filter(([d]) => d.accuracy !== null);
  if (points.length > 1) {
    svg.appendChild(svgEl("polyline", { points: points.map(([d, i]) => `${x(i)},${yRate(d.accuracy)}`).join(" "),
                                        class: "line accuracy" }));
  }
  for (const [d, i] of points) {
    const dot = svgEl("circle", { cx: x(i), cy: yRate(d.accuracy), r: 3.5, class: "dot accuracy" });
    dot.appendChild(svgEl("title", {}, `${d.day}: accuracy ${pct(d.accuracy)} on ${d.outcomes} outcomes`));
    svg.appendChild(dot);
  }
  const every = Math.max(1, Math.ceil(daily.length / 8));
  daily.forEach((d, i) => {
    if (i % every === 0 || i === daily.length - 1) axisLabel(svg, x(i), H - PAD.bottom + 16, d.day.slice(5));
  });
  axisLabel(svg, PAD.left, H - 4, "predictions", "start");
  axisLabel(svg, W - PAD.right, H - 4, "accuracy", "end", "axis accuracy");
  chart.replaceChildren(svg);
}

function drawCalibration(bins) {
  const chart = document.getElementById("calibration-chart");
  const filled = bins.filter((b) => b.count > 0);
  if (!filled.length) {
    chart.replaceChildren(el("p", { class: "empty" }, "No outcomes recorded yet."));
    return;
  }
  const { svg, x, y } = unitSquare("Observed rate against mean predicted probability, per bin",
                                   "mean predicted probability", "observed rate");
  const most = Math.max(...filled.map((b) => b.count));
  svg.appendChild(svgEl("polyline", { points: filled.map((b) => `${x(b.mean_proba)},${y(b.observed_rate)}`).join(" "),
                                      class: "line" }));
  for (const b of filled) {
    const dot = svgEl("circle", { cx: x(b.mean_proba), cy: y(b.observed_rate), r: 3 + 5 * Math.sqrt(b.count / most),
                                  class: "dot" });
    dot.appendChild(svgEl("title", {}, `${b.bin[0]}–${b.bin[1]}: ${b.count} outcomes, mean p ${fmt(b.mean_proba)}, ` +
                                       `observed ${fmt(b.observed_rate)}`));
    svg.appendChild(dot);
  }
  chart.replaceChildren(svg);
}

function drawRoc(series) {
  // series: [{label, curve, auc}], the chosen version first; challengers' curves beside it.
  const chart = document.getElementById("roc-chart");
  const drawn = series.filter((s) => s.curve.length);
  if (!drawn.length) {
    chart.replaceChildren(el("p", { class: "empty" }, "Needs outcomes of both classes."));
    return;
  }
  const { svg, x, y } = unitSquare(drawn.map((s) => `${s.label}: AUC ${fmt(s.auc)}`).join("; "),
                                   "false positive rate", "true positive rate");
  drawn.forEach((s, i) => {
    const line = svgEl("polyline", { points: s.curve.map((p) => `${x(p.fpr)},${y(p.tpr)}`).join(" "),
                                     class: `line roc series-${i}` });
    line.appendChild(svgEl("title", {}, `${s.label}: AUC ${fmt(s.auc)}`));
    svg.appendChild(line);
    svg.appendChild(svgEl("text", { x: x(0.45), y: y(0.1 + 0.08 * (drawn.length - 1 - i)), class: `note series-${i}` },
                          `${s.label} AUC ${fmt(s.auc)}`));
  });
  chart.replaceChildren(svg);
}

function interval(ci) {
  return ci ? `${fmt(ci[0])} to ${fmt(ci[1])}` : "–";
}

function drawComparison(comparisons) {
  const panel = document.getElementById("comparison-panel");
  panel.hidden = !comparisons.length;
  if (!comparisons.length) return;
  const verdicts = comparisons.map((c) => {
    const auc = c.roc_auc;
    const served = c.champion === state.stats.model_version;
    const name = `Challenger ${c.challenger.slice(0, 12)}${served ? "" : ` (against ${c.champion.slice(0, 12)})`}`;
    if (auc.p_value === null) return `${name}: not enough labelled records of both classes to compare yet.`;
    if (c.challenger_better) {
      return `${name} is significantly better than the champion: ROC AUC ${fmt(auc.difference)} higher ` +
             `(95 % CI ${interval(auc.ci95)}, p = ${fmt(auc.p_value)}, ${c.records} records).`;
    }
    if (auc.p_value < 0.05) {
      return `${name} is significantly worse than the champion: ROC AUC ${fmt(-auc.difference)} lower ` +
             `(p = ${fmt(auc.p_value)}, ${c.records} records).`;
    }
    return `${name}: no significant difference in ROC AUC (p = ${fmt(auc.p_value)}, ${c.records} records).`;
  });
  replace("comparison-verdicts", ...verdicts.map((text, i) =>
    el("li", { class: comparisons[i].challenger_better ? "better" : "" }, text)));
  const head = el("tr");
  for (const title of ["challenger", "figure", "champion", "challenger", "difference", "95 % CI", "p-value",
                       "records"]) {
    head.appendChild(el("th", {}, title));
  }
  const rows = comparisons.flatMap((c) => [
    ["ROC AUC", c.roc_auc, c.roc_auc.p_value, "DeLong"],
    ["accuracy", c.accuracy, c.accuracy.mcnemar_p_value, "McNemar"],
    ["Brier score", c.brier_score, null, ""],
    ["log loss", c.log_loss, null, ""],
  ].map(([figure, f, p, test]) => {
    const row = el("tr");
    row.appendChild(el("td", {}, c.challenger.slice(0, 12)));
    row.appendChild(el("td", {}, figure));
    for (const value of [f.champion, f.challenger, f.difference]) row.appendChild(el("td", { class: "num" }, fmt(value)));
    row.appendChild(el("td", { class: "num" }, interval(f.ci95)));
    row.appendChild(el("td", { class: "num" }, p === null ? "–" : `${fmt(p)} (${test})`));
    row.appendChild(el("td", { class: "num" }, String(c.records)));
    return row;
  }));
  const table = replace("comparison-table", el("thead"), el("tbody"));
  table.tHead.appendChild(head);
  table.tBodies[0].append(...rows);
}

function bucketBars(buckets) {
  const width = 160;
  const height = 28;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "buckets", role: "img",
                             "aria-label": "training (grey) and served (blue) share per bucket" });
  const most = Math.max(0.0001, ...buckets.flatMap((b) => [b.training, b.served]));
  const band = width / Math.max(1, buckets.length);
  buckets.forEach((b, i) => {
    const w = Math.max(1, band / 2 - 1);
    for (const [value, cls, offset] of [[b.training, "training", 0], [b.served, "served", w]]) {
      const h = (height - 2) * (value / most);
      const bar = svgEl("rect", { x: i * band + offset, y: height - h, width: w, height: h, class: cls });
      bar.appendChild(svgEl("title", {}, `${b.bucket}: training ${pct(b.training)}, served ${pct(b.served)}`));
      svg.appendChild(bar);
    }
  });
  return svg;
}

function drawDrift(drift) {
  const table = document.getElementById("drift-table");
  if (!drift.length) {
    table.replaceChildren(el("caption", {}, "Drift is shown for the version being served."));
    return;
  }
  const head = el("tr");
  for (const title of ["feature", "kind", "PSI", "missing (training → served)", "unseen", "distribution", "flags"]) {
    head.appendChild(el("th", {}, title));
  }
  const rows = drift.map((f) => {
    const row = el("tr", { class: f.flagged ? "flagged" : "" });
    row.appendChild(el("td", {}, f.feature));
    row.appendChild(el("td", {}, f.kind));
    row.appendChild(el("td", { class: "num" }, fmt(f.psi)));
    row.appendChild(el("td", { class: "num" }, `${pct(f.null_share.training)} → ${pct(f.null_share.served)}`));
    row.appendChild(el("td", { class: "num" }, f.unseen_share === null ? "" : pct(f.unseen_share)));
    const cell = el("td");
    cell.appendChild(bucketBars(f.buckets));
    row.appendChild(cell);
    row.appendChild(el("td", { class: "flags" }, f.flags.length ? f.flags.join("; ") : "ok"));
    return row;
  });
  table.replaceChildren(el("thead", {}), el("tbody"));
  table.tHead.appendChild(head);
  table.tBodies[0].append(...rows);
}

function tile(label, value, id, hint) {
  const box = el("div", { class: "tile", id });
  box.appendChild(el("span", { class: "value" }, value));
  box.appendChild(el("span", { class: "label" }, label));
  if (hint) box.title = hint;
  return box;
}

function drawSummary(v) {
  const o = v.outcomes;
  const cm = o.confusion_matrix;
  replace(
    "summary",
    tile("predictions", fmt(v.predictions), "tile-predictions"),
    tile("outcomes recorded", fmt(o.labeled), "tile-outcomes"),
    tile("accuracy", pct(o.accuracy), "tile-accuracy"),
    tile("precision", fmt(o.precision), "tile-precision"),
    tile("recall", fmt(o.recall), "tile-recall"),
    tile("F1", fmt(o.f1), "tile-f1"),
    tile("ROC AUC", fmt(o.roc_auc), "tile-roc-auc"),
    tile("Brier score", fmt(o.brier_score), "tile-brier", "mean of (p - y)², lower is better"),
    tile("log loss", fmt(o.log_loss), "tile-log-loss"),
    tile("observed positive rate", pct(o.base_rate), "tile-base-rate"),
    tile("mean predicted probability", pct(o.mean_proba), "tile-mean-proba", "of the predictions with an outcome"),
    tile("tn · fp · fn · tp", `${cm.tn} · ${cm.fp} · ${cm.fn} · ${cm.tp}`, "tile-confusion",
         "confusion matrix: true negatives, false positives, false negatives, true positives"),
  );
}

// ---- data ----

const state = { stats: null, card: null };

function query() {
  const params = new URLSearchParams();
  for (const name of ["since", "until"]) {
    const value = document.getElementById(name).value;
    if (value) params.set(name, value);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function loadStats() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const headers = { Accept: "application/json" };
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(`stats${query()}`, { headers });
  document.getElementById("forget-key").hidden = !key;
  if (response.status === 401) {
    document.getElementById("figures").hidden = true;
    document.getElementById("key-message").textContent = key
      ? "That API key was refused; enter the server's API key."
      : "The quality figures hold recorded outcomes: this server needs its API key to show them.";
    document.getElementById("key-form").hidden = false;
    setStatus("");
    document.body.dataset.state = "needs-key";
    return;
  }
  document.getElementById("key-form").hidden = true;
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    setStatus(`Could not load the figures: ${problem.detail || response.status}`);
    document.body.dataset.state = "failed";
    return;
  }
  state.stats = await response.json();
  showVersions();
  drawVersion();
}

function showVersions() {
  const select = document.getElementById("version");
  const previous = select.value;
  // A version may be listed twice (a champion now, a challenger before): options are indexes.
  select.replaceChildren(...state.stats.versions.map((v, i) => el("option", { value: String(i) },
    `${v.model_version.slice(0, 12)}${v.serving ? " (serving)" : v.role === "challenger" ? " (challenger)" : ""}`)));
  if (previous && Number(previous) < state.stats.versions.length) select.value = previous;
  document.getElementById("filters").hidden = false;
}

function drawVersion() {
  const v = state.stats.versions[Number(document.getElementById("version").value)] || state.stats.versions[0];
  if (!v) {
    document.getElementById("figures").hidden = true;
    setStatus("No predictions recorded in this period yet.");
    document.body.dataset.state = "ready";
    return;
  }
  setStatus("");
  document.getElementById("figures").hidden = false;
  drawSummary(v);
  drawDaily(v.daily);
  drawCalibration(v.outcomes.calibration);
  const others = state.stats.versions.filter((x) => x !== v && (x.role === "challenger" || x.serving));
  drawRoc([v, ...others].map((x) => ({ label: `${x.model_version.slice(0, 12)}${x.serving ? " (serving)"
                                                 : x.role === "challenger" ? " (challenger)" : ""}`,
                                        curve: x.roc_curve, auc: x.outcomes.roc_auc })));
  drawComparison(state.stats.comparison || []);
  drawDrift(v.drift);
  document.body.dataset.state = "ready";
}

async function loadCard() {
  const response = await fetch("model", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`/model answered ${response.status}`);
  const card = await response.json();
  state.card = card;
  const version = card.model_version || "";
  document.getElementById("model-line").textContent = `model ${version.slice(0, 12)}`;
  const metrics = card.metrics || {};
  const entries = [
    ["version", version],
    ["estimator", card.estimator],
    ["engine", card.engine_reason || card.engine],
    ["target", card.target],
    ["threshold", fmt(card.threshold)],
    ["training rows", fmt(metrics.n ?? card.training?.fingerprint?.rows)],
    ["training metrics", Object.entries(metrics).filter(([k]) => !["method", "n"].includes(k))
      .map(([k, value]) => `${k} ${fmt(value)}`).join(", ")],
    ["measured by", metrics.method],
    ["trained with", Object.entries(card.versions || {}).map(([k, value]) => `${k} ${value}`).join(", ")],
  ];
  replace("model-card", ...entries.filter(([, value]) => value !== undefined && value !== "")
    .flatMap(([term, value]) => [el("dt", {}, term), el("dd", { id: `card-${term.replace(/ /g, "-")}` }, value)]));
  const features = card.features || [];
  const head = el("tr");
  for (const title of ["feature", "kind", "missing allowed", "training range / categories"]) {
    head.appendChild(el("th", {}, title));
  }
  const rows = features.map((f) => {
    const row = el("tr");
    row.appendChild(el("td", {}, f.name));
    row.appendChild(el("td", {}, f.kind));
    row.appendChild(el("td", {}, f.nullable ? "yes" : "no"));
    const seen = f.kind === "category"
      ? (f.categories || []).slice(0, 12).join(", ") + ((f.categories || []).length > 12 ? ", …" : "")
      : `${fmt(f.seen_min)} to ${fmt(f.seen_max)}`;
    row.appendChild(el("td", {}, seen));
    return row;
  });
  const table = replace("features", el("thead"), el("tbody"));
  table.tHead.appendChild(head);
  table.tBodies[0].append(...rows);
  document.body.dataset.card = "ready";
}

function start() {
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadStats().catch((e) => report(e));
  });
  document.getElementById("version").addEventListener("change", () => {
    if (state.stats) drawVersion();
  });
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, document.getElementById("key").value.trim());
    document.getElementById("key").value = "";
    loadStats().catch((e) => report(e));
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    loadStats().catch((e) => report(e));
  });
  loadCard().catch((e) => report(e));
  loadStats().catch((e) => {
    report(e);
    setStatus("Could not load the figures.");
    document.body.dataset.state = "failed";
  });
}

start();
