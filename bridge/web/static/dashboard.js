// The dashboard's live table and charts. Data comes from the bridge's own JSON endpoints (behind
// the same sign-in); charts are uPlot, served from /dashboard/static/vendor (no CDN).
"use strict";

const OUTCOME_COLOURS = {
  answered: "#2a9d8f", transferred: "#1d3557", message: "#8ab17d", refused: "#e9c46a",
  declined: "#e76f51", failed: "#a4161a", abandoned: "#9c6644",
};
window.bridgeCharts = {};

async function refreshLive() {
  const response = await fetch("/dashboard/api/live", { credentials: "same-origin" });
  if (!response.ok) return;
  const body = document.querySelector("#live tbody");
  body.replaceChildren();
  for (const call of await response.json()) {
    const turns = call.conversation.turns || [];
    const last = turns.length ? turns[turns.length - 1].caller : "";
    const row = body.insertRow();
    const link = document.createElement("a");
    link.href = "/dashboard/calls/" + encodeURIComponent(call.id);
    link.textContent = call.id;
    row.insertCell().append(link);
    for (const value of [call.caller, call.persona, Math.round(call.seconds), turns.length, last]) {
      row.insertCell().textContent = value;
    }
  }
}

function width(element) {
  return Math.max(320, element.clientWidth || element.parentElement.clientWidth - 20);
}

function draw(name, options, data) {
  const element = document.getElementById(name);
  element.replaceChildren();
  const points = data.slice(1).reduce((sum, series) => sum + series.filter((v) => v != null && v > 0).length, 0);
  window.bridgeCharts[name] = { points, series: data.length - 1 };
  if (!points) {
    const empty = document.createElement("p");
    empty.className = "meta";
    empty.textContent = "No data for these calls yet.";
    element.append(empty);
    return;
  }
  new uPlot({ width: width(element), height: 220, ...options }, data, element);
}

function bars(fill) {
  return { fill, stroke: fill, paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } };
}

function outcomesChart(stats) {
  // Stacked: each series is drawn up to the running total, tallest first, so each band shows its share.
  const kinds = Object.keys(stats.by_outcome);
  const totals = [];
  let running = stats.hours.map(() => 0);
  for (const kind of kinds) {
    running = running.map((value, i) => value + stats.by_outcome[kind][i]);
    totals.push(running);
  }
  const order = kinds.map((kind, i) => [kind, totals[i]]).reverse();
  draw("chart-outcomes", {
    series: [{}, ...order.map(([kind]) => ({ label: kind, ...bars(OUTCOME_COLOURS[kind] || "#999") }))],
    axes: [{}, { label: "calls" }],
  }, [stats.hours, ...order.map(([, values]) => values)]);
}

function targetsChart(stats) {
  const names = Object.keys(stats.targets);
  const xs = names.map((_, i) => i);
  draw("chart-targets", {
    scales: { x: { time: false, range: [-0.6, Math.max(names.length - 0.4, 0.6)] } },
    series: [{ label: "target", value: (u, i) => names[i] ?? "" }, { label: "calls", ...bars("#457b9d") }],
    axes: [{ values: (u, splits) => splits.map((i) => names[i] ?? ""), splits: () => xs }, { label: "calls" }],
  }, [xs, names.map((name) => stats.targets[name])]);
}

function latencyChart(stats) {
  draw("chart-latency", {
    series: [{}, { label: "p50 ms", stroke: "#2a9d8f", width: 2, spanGaps: true },
      { label: "p95 ms", stroke: "#e76f51", width: 2, dash: [6, 4], spanGaps: true }],
    axes: [{}, { label: "ms" }],
  }, [stats.hours, stats.voice_to_voice_p50, stats.voice_to_voice_p95]);
}

function eventsChart(stats) {
  draw("chart-events", {
    series: [{}, { label: "barge-ins", ...bars("#f4a261") }, { label: "errors", stroke: "#a4161a", width: 2, points: { size: 6 } }],
    axes: [{}, { label: "per hour" }],
  }, [stats.hours, stats.barge_ins, stats.errors]);
}

async function drawCharts() {
  const section = document.querySelector(".charts");
  if (!section) return;
  const response = await fetch("/dashboard/api/stats?" + section.dataset.query, { credentials: "same-origin" });
  if (!response.ok) return;
  const stats = await response.json();
  outcomesChart(stats);
  targetsChart(stats);
  latencyChart(stats);
  eventsChart(stats);
  window.bridgeChartsReady = true;
}

refreshLive();
setInterval(refreshLive, 2000);
drawCharts();
