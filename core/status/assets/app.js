// The status page of probe serve: it reads /api/v1/ only (docs/output.md).
// Charts are uPlot's; window.probe exposes them, the data each was given,
// and when the list and the first charts were first drawn (milliseconds
// since the page's navigation began), to whoever inspects the page (the
// tests read them back).
"use strict";

const probe = { charts: {}, series: null, latest: null, targets: [], shown: [], timings: {} };
window.probe = probe;

const WINDOW = 4;     // attempts each side of a point in its median and bands
let selected = new URLSearchParams(location.hash.slice(1)).get("target") || "";
let range = "all";

const $ = (sel) => document.querySelector(sel);
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// report is the data of a report of probe run -o html, which the page reads
// in place of the API; null on the status page.
const reportEl = document.getElementById("probe-data");
const report = reportEl ? JSON.parse(reportEl.textContent) : null;

async function getJSON(path) {
  if (report) {
    const [route, query] = path.split("?");
    const target = new URLSearchParams(query).get("target");
    const body = route.endsWith("/targets") ? report.targets : route.endsWith("/series") ? report.series[target] : report.latest[target];
    if (!body) throw new Error("no data for " + path);
    return body;
  }
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// fmtSpan says a span of seconds: "24 h", "5 min", "0.4 s".
function fmtSpan(sec) {
  const [v, unit] = sec >= 3600 ? [sec / 3600, " h"] : sec >= 60 ? [sec / 60, " min"] : [sec, " s"];
  return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + unit;
}

function fmtMS(v) {
  if (v == null) return "–";
  return v >= 100 ? v.toFixed(0) + " ms" : v.toFixed(1) + " ms";
}

function fmtSince(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const secs = Math.max(0, (Date.now() - d.getTime()) / 1000);
  const ago = secs < 90 ? Math.round(secs) + " s" : secs < 5400 ? Math.round(secs / 60) + " min" : (secs / 3600).toFixed(1) + " h";
  return ago + " ago";
}

// loadTargets fetches the list and draws it, filtered.
async function loadTargets() {
  const body = await getJSON("api/v1/targets");
  probe.targets = body.targets;
  const ok = body.targets.filter((t) => t.state === "ok").length;
  const failing = body.targets.filter((t) => t.state === "failing").length;
  $("#summary").textContent = `${body.targets.length} targets: ${ok} ok, ${failing} failing` +
    (report ? "" : `; history kept ${fmtSpan(body.retain_seconds)} in memory`);
  drawTargets();
  if (!selected && body.targets.length) selected = body.targets[0].name;
}

// The list draws only the rows in view and BUFFER more each side, between
// two spacer rows as tall as the rows left out: a layout of 1,000 rows is
// what made the page slow, not fetching them. probe.shown is every target
// the filter lets through.
const BUFFER = 30;
let rowHeight = 0; // of a drawn row, in CSS pixels; 0 until one is drawn

function drawTargets() {
  const name = $("#filter-name").value.toLowerCase();
  const state = $("#filter-state").value;
  probe.shown = probe.targets.filter((t) => (!state || t.state === state) && t.name.toLowerCase().includes(name));
  $("#targets").setAttribute("aria-rowcount", String(probe.shown.length + 1));
  const none = $("#none");
  none.hidden = probe.shown.length > 0 || !probe.targets.length;
  drawRows();
  if (probe.timings.targets == null && probe.targets.length) probe.timings.targets = performance.now();
}

// drawRows draws the rows of probe.shown in view of the list's scroll.
function drawRows() {
  const box = $("#list"), tbody = $("#targets tbody");
  const rows = probe.shown;
  const h = rowHeight || 28;
  const top = tbody.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
  const last = Math.min(rows.length, Math.ceil((box.scrollTop - top + box.clientHeight) / h) + BUFFER);
  // Scrolled past fewer rows than before, draw the last ones: the browser
  // then scrolls up to them, and the scroll draws again.
  const first = Math.max(0, Math.min(Math.floor((box.scrollTop - top) / h) - BUFFER, last - 2 * BUFFER));
  const frag = document.createDocumentFragment();
  if (first > 0) frag.append(spacer(first * h));
  for (let i = first; i < last; i++) frag.append(row(rows[i], i));
  if (last < rows.length) frag.append(spacer((rows.length - last) * h));
  tbody.replaceChildren(frag);
  const drawn = !rowHeight && last > first && tbody.querySelector("tr[data-target]").getBoundingClientRect().height;
  if (drawn > 0) { // 0 while the page is not laid out
    rowHeight = drawn;
    if (Math.abs(rowHeight - h) > 0.5) drawRows();
  }
}

function spacer(px) {
  const tr = document.createElement("tr");
  tr.className = "spacer";
  tr.setAttribute("aria-hidden", "true");
  const td = document.createElement("td");
  td.colSpan = 6;
  td.style.height = px + "px";
  tr.append(td);
  return tr;
}

// row returns the row of target t, the i-th the filter lets through.
function row(t, i) {
  const tr = document.createElement("tr");
  tr.dataset.target = t.name;
  tr.dataset.state = t.state;
  tr.setAttribute("aria-rowindex", String(i + 2));
  tr.setAttribute("aria-selected", String(t.name === selected));
  const cells = [
    t.name,
    (t.state === "ok" ? "✔ " : t.state === "failing" ? "✖ " : "… ") + t.state,
    fmtSince(t.since),
    t.class ? `${t.class} (${t.phase})` : "",
    fmtMS(t.total_ms),
    t.cert_days_left == null ? "–" : String(t.cert_days_left),
  ];
  cells.forEach((text, k) => {
    const td = document.createElement("td");
    if (k === 0) {
      const a = document.createElement("a");
      a.href = "#target=" + encodeURIComponent(t.name);
      a.textContent = text;
      td.append(a);
    } else {
      td.textContent = text;
    }
    if (k === 0 || k === 3) td.title = text; // a long one is cut short
    if (k === 1) td.className = "state-" + t.state;
    tr.append(td);
  });
  return tr;
}

let drawPending = false;
function drawRowsSoon() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; drawRows(); });
}
$("#list").addEventListener("scroll", drawRowsSoon, { passive: true });
window.addEventListener("resize", drawRowsSoon);

// One listener for the whole list, not one per row.
$("#targets tbody").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-target]");
  if (!tr) return;
  ev.preventDefault();
  select(tr.dataset.target);
});

function select(name) {
  selected = name;
  history.replaceState(null, "", "#target=" + encodeURIComponent(name));
  for (const tr of document.querySelectorAll("#targets tbody tr[data-target]")) tr.setAttribute("aria-selected", String(tr.dataset.target === name));
  loadDetail();
}

// quantile returns the q-quantile of sorted values vs.
function quantile(vs, q) {
  const pos = (vs.length - 1) * q;
  const lo = Math.floor(pos);
  return lo + 1 < vs.length ? vs[lo] + (vs[lo + 1] - vs[lo]) * (pos - lo) : vs[lo];
}

// smoke returns, per attempt, the median and the 10th, 25th, 75th and 90th
// percentiles of the attempts within WINDOW of it that ran the phase.
function smoke(ys) {
  const out = { p10: [], p25: [], p50: [], p75: [], p90: [] };
  for (let i = 0; i < ys.length; i++) {
    const w = ys.slice(Math.max(0, i - WINDOW), i + WINDOW + 1).filter((v) => v != null).sort((a, b) => a - b);
    for (const [k, q] of [["p10", 0.1], ["p25", 0.25], ["p50", 0.5], ["p75", 0.75], ["p90", 0.9]]) {
      out[k].push(w.length ? quantile(w, q) : null);
    }
  }
  return out;
}

// chart draws one phase's attempts, smokeping-style, into el: ys are the
// attempts kept one by one, bq the quantiles of the older ones' buckets
// (s.buckets), drawn at each bucket's middle, its median and bands the
// bucket's own.
function chart(el, title, s, ys, bq, width) {
  const b = s.buckets;
  const nb = b ? b.t.length : 0;
  const bucketCol = (k) => (nb ? bq.map((q) => (q ? q[b.quantiles.indexOf(k)] : null)) : []);
  const classes = [...new Set(s.class.concat(nb ? b.class : []).filter((c) => c))].sort();
  const sm = smoke(ys);
  const t = nb ? b.t.map((x) => x + b.seconds / 2).concat(s.t) : s.t;
  const data = [t,
    bucketCol(0.1).concat(sm.p10), bucketCol(0.9).concat(sm.p90),
    bucketCol(0.25).concat(sm.p25), bucketCol(0.75).concat(sm.p75),
    bucketCol(0.5).concat(sm.p50), new Array(nb).fill(null).concat(ys)];
  const hidden = { stroke: "transparent", points: { show: false } };
  const series = [
    { label: "time" },
    { label: "p10", ...hidden }, { label: "p90", ...hidden },
    { label: "p25", ...hidden }, { label: "p75", ...hidden },
    { label: "median", stroke: css("--median"), width: 2, spanGaps: true, points: { show: false } },
    { label: "attempt", stroke: css("--dot"), paths: () => null, points: { show: true, size: 4, fill: css("--dot") } },
  ];
  classes.forEach((c, i) => {
    const colour = css("--fail-" + (i % 5));
    data.push((nb ? b.class.map((k) => (k === c ? 0 : null)) : []).concat(s.class.map((k) => (k === c ? 0 : null))));
    series.push({ label: "failure: " + c, stroke: colour, paths: () => null, points: { show: true, size: 9, fill: colour, stroke: colour } });
  });
  const fg = css("--fg"), grid = css("--grid");
  const opts = {
    title, width, height: 200,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    series,
    bands: [
      { series: [2, 1], fill: css("--band-outer") },
      { series: [4, 3], fill: css("--band-inner") },
    ],
    axes: [
      { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } },
      { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid }, label: "ms", size: 55 },
    ],
  };
  const div = document.createElement("div");
  div.className = "chart";
  div.dataset.phase = title;
  div.dataset.failureClasses = classes.join(" ");
  div.setAttribute("role", "img");
  const med = data[5].filter((v) => v != null).sort((a, b) => a - b);
  const older = nb ? b.attempts.reduce((x, y) => x + y, 0) : 0;
  div.setAttribute("aria-label", `${title}: ${s.t.length + older} attempts, median ${med.length ? fmtMS(quantile(med, 0.5)) : "none"}` +
    (classes.length ? `, failures: ${classes.join(", ")}` : ""));
  el.append(div);
  return new uPlot(opts, data, div);
}

async function loadDetail() {
  if (!selected) return;
  const q = "target=" + encodeURIComponent(selected);
  const [s, latest] = await Promise.all([
    getJSON(`api/v1/series?${q}&range=${range}`),
    getJSON(`api/v1/latest?${q}`).catch(() => null),
  ]);
  probe.series = s;
  probe.latest = latest;
  $("#detail").hidden = false;
  $("#detail-title").textContent = selected;
  const t = probe.targets.find((x) => x.name === selected) || {};
  $("#detail-meta").textContent = `${t.state || ""}${t.since ? " since " + new Date(t.since).toLocaleString() : ""}` +
    (t.class ? `; failing with ${t.class} in ${t.phase}` : "") +
    (t.cert_days_left != null ? `; certificate days left: ${t.cert_days_left}` : "") + `; ${s.t.length} attempts shown` +
    (s.buckets ? `, and ${s.buckets.attempts.reduce((x, y) => x + y, 0)} older ones in buckets of ${fmtSpan(s.buckets.seconds)}` : "");
  drawWaterfall(latest);
  for (const u of Object.values(probe.charts)) u.destroy();
  probe.charts = {};
  const el = $("#charts");
  el.replaceChildren();
  const width = Math.max(320, el.clientWidth - 10);
  const bk = s.buckets;
  for (const phase of s.phases) probe.charts[phase] = chart(el, phase, s, s.phase_ms[phase], bk ? bk.phase_ms[phase] : null, width);
  probe.charts.total = chart(el, "total", s, s.total_ms, bk ? bk.total_ms : null, width);
  if (probe.timings.charts == null) probe.timings.charts = performance.now();
  document.body.dataset.ready = String(Date.now());
}

function drawWaterfall(a) {
  const el = $("#waterfall");
  el.replaceChildren();
  if (!a) {
    el.textContent = "no attempt yet";
    return;
  }
  const total = Math.max(a.total_ms, 0.001);
  for (const p of a.phases) {
    const row = document.createElement("div");
    row.className = "wf-row";
    row.setAttribute("role", "listitem");
    row.dataset.phase = p.name;
    const label = document.createElement("span");
    label.textContent = p.name;
    const track = document.createElement("span");
    track.className = "wf-track";
    const bar = document.createElement("span");
    bar.className = "wf-bar" + (p.ok ? "" : " failed");
    bar.style.left = (100 * p.start_ms / total) + "%";
    bar.style.width = (100 * p.duration_ms / total) + "%";
    track.append(bar);
    const ms = document.createElement("span");
    ms.className = "wf-ms";
    ms.textContent = fmtMS(p.duration_ms);
    row.append(label, track, ms);
    el.append(row);
  }
  const foot = document.createElement("p");
  foot.className = "muted";
  foot.textContent = `total ${fmtMS(a.total_ms)}` + (a.address ? ` to ${a.address}` : "") +
    (a.failure ? `; failed in ${a.failure.phase}: ${a.failure.class}: ${a.failure.message}` : "");
  el.append(foot);
}

// A new filter starts the list from its top.
function filter() {
  $("#list").scrollTop = 0;
  drawTargets();
}
$("#filter-name").addEventListener("input", filter);
$("#filter-state").addEventListener("change", filter);
for (const b of document.querySelectorAll(".ranges button")) {
  b.addEventListener("click", () => {
    range = b.dataset.range;
    for (const o of document.querySelectorAll(".ranges button")) o.setAttribute("aria-pressed", String(o === b));
    loadDetail();
  });
}
window.addEventListener("hashchange", () => {
  const t = new URLSearchParams(location.hash.slice(1)).get("target");
  if (t && t !== selected) select(t);
});

function refresh() {
  loadTargets().then(() => { if (selected) return loadDetail(); }).catch((e) => { $("#summary").textContent = "error: " + e.message; });
}
if (report) {
  document.querySelector("h1").textContent = report.title;
  document.querySelector(".ranges").hidden = true; // a run's attempts are all shown
}
refresh();
if (!report) setInterval(refresh, 15000);
