// The asset page's script: the Materialize / Observe button (a POST to the catalog's JSON API, then the run
// followed to its end), and the Plots tab: each numeric label drawn with plotly.js from the series the JSON API
// downsamples in ClickHouse; a zoom fetches the narrower range again (downsampled anew), a double-click the whole
// history, a click on a point opens its event. User text reaches the page as text only (textContent, and escaped
// before plotly, which reads a few HTML tags in its strings).
"use strict";

const FINISHED = new Set(["succeeded", "failed", "launched"]);
const POINTS = 1000;

function plotlyText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function pad(n, width = 2) { return String(n).padStart(width, "0"); }

// An ISO time as plotly shows dates: "YYYY-MM-DD HH:MM:SS.mmm", in the reader's zone.
function localString(iso) {
  const d = new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A date of a plotly axis range (the reader's zone) as an ISO time in UTC.
function rangeToIso(value) {
  let text = String(value).trim().replace(" ", "T").replace(/(\.\d{3})\d+/, "$1");
  if (!text.includes("T")) text += "T00:00";
  const d = new Date(text);
  return isNaN(d) ? null : d.toISOString();
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

// ---- Materialize / Observe -----------------------------------------------------------------------------
async function followRun(runId, badge) {
  for (let i = 0; i < 300; i++) {
    try {
      const run = await getJson(`/api/runs/${encodeURIComponent(runId)}`);
      badge.textContent = run.status;
      badge.className = `badge badge-${run.status}`;
      if (FINISHED.has(run.status)) return;
    } catch (err) { /* not recorded yet: the run worker has not taken it */ }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function requestRun(button) {
  const result = document.getElementById("run-result");
  const partition = document.getElementById("run-partition");
  const body = partition && partition.value.trim() ? { partition: partition.value.trim() } : {};
  button.disabled = true;
  result.classList.remove("error");
  result.textContent = "Requesting…";
  try {
    const response = await fetch(button.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      result.classList.add("error");
      result.textContent = answer.error || `The request failed (HTTP ${response.status})`;
      return;
    }
    result.textContent = "";
    for (const runId of answer.run_ids || []) {
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(runId)}`;
      link.className = "run";
      link.textContent = `Run ${runId.slice(0, 8)}`;
      const badge = document.createElement("span");
      badge.className = "badge badge-queued";
      badge.textContent = "requested";
      result.append(link, " ", badge, " ");
      followRun(runId, badge);
    }
  } catch (err) {
    result.classList.add("error");
    result.textContent = `The request failed: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---- Plots -----------------------------------------------------------------------------------------------
function seriesUrl(api, label, axis, range) {
  const params = new URLSearchParams({ x: axis, points: String(POINTS) });
  if (range && range.after) params.set("after", range.after);
  if (range && range.before) params.set("before", range.before);
  return `${api}/metadata/${encodeURIComponent(label)}?${params}`;
}

// By time: raw points (each opens its event), or at an hourly or daily grain each group of buckets as its mean,
// with the band between its min and max.
function timeTraces(series) {
  const x = series.points.map((p) => localString(p.x));
  const main = {
    type: "scatter", mode: series.points.length > 200 ? "lines" : "lines+markers",
    x, y: series.points.map((p) => p.y),
    customdata: series.points.map((p) => [p.event_id, p.x]),
    line: { width: 1.5, color: "#2557d6" }, marker: { size: 5 },
    hovertemplate: "%{x}<br>%{y}<extra></extra>",
  };
  if (series.grain === "raw") return [main];
  main.text = series.points.map((p) => `${p.count} values, min ${p.min}, max ${p.max}, last ${p.last}`);
  main.hovertemplate = "%{x}: mean %{y}<br>%{text}<extra></extra>";
  const edge = { type: "scatter", mode: "lines", x, line: { width: 0 }, hoverinfo: "skip" };
  return [
    { ...edge, y: series.points.map((p) => p.min) },
    { ...edge, y: series.points.map((p) => p.max), fill: "tonexty", fillcolor: "rgba(37, 87, 214, 0.15)" },
    main,
  ];
}

// By partition: each bucket of consecutive partitions as its mean (its value, for one partition), with the band
// between its min and max where buckets hold several.
function partitionTraces(series) {
  const x = series.points.map((p) => plotlyText(p.last_partition));
  const main = {
    type: "scatter", mode: series.points.length > 200 ? "lines" : "lines+markers", x,
    y: series.points.map((p) => (p.partitions > 1 ? p.avg : p.last)),
    customdata: series.points.map((p) => [p.event_id, p.last_partition]),
    text: series.points.map((p) => (p.partitions > 1
      ? plotlyText(`${p.first_partition} … ${p.last_partition}: ${p.partitions} partitions, min ${p.min}, max ${p.max}`)
      : plotlyText(`${p.last_partition}`))),
    line: { width: 1.5, color: "#1f7a3d" }, marker: { size: 5 },
    hovertemplate: "%{text}<br>%{y}<extra></extra>",
  };
  if (!series.points.some((p) => p.partitions > 1)) return [main];
  const edge = { type: "scatter", mode: "lines", x, line: { width: 0 }, hoverinfo: "skip" };
  return [
    { ...edge, y: series.points.map((p) => p.min) },
    { ...edge, y: series.points.map((p) => p.max), fill: "tonexty", fillcolor: "rgba(31, 122, 61, 0.15)" },
    main,
  ];
}

// How a series' grain reads in its note: a rollup says so.
const GRAINS = { hour: "hourly rollups, ", day: "daily rollups, " };

function describe(note, series) {
  if (!series.count) { note.textContent = "No values in this range."; return; }
  const shown = series.points.length;
  const span = series.x === "time"
    ? `from ${localString(series.first)} to ${localString(series.last)}`
    : `partitions ${series.first} to ${series.last}`;
  const grain = GRAINS[series.grain] || "";
  note.textContent = series.downsampled
    ? `${shown.toLocaleString()} points for ${series.count.toLocaleString()} values (${grain}downsampled in ClickHouse), ${span}`
    : `All ${series.count.toLocaleString()} values, ${span}`;
  if (series.raw_since && series.x === "time" && series.grain === "raw") {
    note.textContent += `; raw points are kept from ${localString(series.raw_since)}`;
  }
}

// The range a zoom asks for: times (the axis is in the reader's zone) or the partitions under the zoomed indices.
function zoomRange(axis, event, points) {
  if (event["xaxis.autorange"]) return {};
  const low = event["xaxis.range[0]"], high = event["xaxis.range[1]"];
  if (low === undefined || high === undefined) return null;
  if (axis === "time") return { after: rangeToIso(low), before: rangeToIso(high) };
  const first = Math.max(0, Math.ceil(Number(low))), last = Math.min(points.length - 1, Math.floor(Number(high)));
  if (!(first <= last)) return null;
  return { after: points[first].first_partition, before: points[last].last_partition };
}

async function drawPlot(element, config) {
  const axis = element.dataset.x, label = element.dataset.label;
  const note = document.getElementById(`${element.id}-note`);
  let current = null, asked = 0;
  const layout = {
    margin: { l: 56, r: 12, t: 8, b: 48 }, hovermode: "closest", dragmode: "zoom", showlegend: false,
    xaxis: { type: axis === "time" ? "date" : "category", automargin: true }, yaxis: { automargin: true, zeroline: false },
  };
  const options = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "toImage"] };

  async function load(range) {
    const mine = ++asked;
    element.dataset.state = "loading";
    const series = await getJson(seriesUrl(config.api, label, axis, range));
    if (mine !== asked) return;  // a newer zoom has been asked for
    current = series;
    const traces = axis === "time" ? timeTraces(series) : partitionTraces(series);
    await Plotly.react(element, traces, { ...layout, xaxis: { ...layout.xaxis, autorange: true } }, options);
    describe(note, series);
    Object.assign(element.dataset, {
      state: "drawn", count: String(series.count), points: String(series.points.length), grain: series.grain,
      first: series.first || "", last: series.last || "", range: range && range.after ? "zoomed" : "all",
    });
  }

  try {
    await load({});
  } catch (err) {
    element.dataset.state = "error";
    note.textContent = `The series could not be read: ${err.message}`;
    return;
  }
  element.on("plotly_relayout", (event) => {
    const range = current && zoomRange(axis, event, current.points);
    if (range) load(range).catch((err) => { note.textContent = `The series could not be read: ${err.message}`; });
  });
  element.on("plotly_click", (event) => {
    const point = event.points && event.points[0];
    if (!point || !point.customdata || !point.customdata[0]) return;
    const [eventId, where] = point.customdata;
    const params = new URLSearchParams({ tab: "events", event: eventId });
    params.set(axis === "time" ? "at" : "partition", where);
    window.location.assign(`${config.page}?${params}#event-${eventId}`);
  });
}

async function drawPlots() {
  const data = document.getElementById("plot-data");
  if (!data || typeof Plotly === "undefined") return;
  const config = JSON.parse(data.textContent);
  const queue = [...document.querySelectorAll(".plot[data-label]")];
  const worker = async () => { for (let el = queue.shift(); el; el = queue.shift()) await drawPlot(el, config); };
  await Promise.all([worker(), worker(), worker()]);
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("run-button");
  if (button) button.addEventListener("click", () => requestRun(button));
  drawPlots();
});
