// One canary's page: its state, charts drawn by the server (SVG), analysis, webhooks, Events, Git, controls.
"use strict";

const [, , namespace, name] = location.pathname.split("/").map(decodeURIComponent);
const base = "/api/canaries/" + encodeURIComponent(namespace) + "/" + encodeURIComponent(name);
const WHAT = {
  promote: "Promote it now, skipping the rest of its analysis?",
  abort: "Abort the release and roll the canary back now?",
  retry: "Run the failed revision's analysis again?",
  pause: "Pause it (spec.suspend)? It keeps its weights and does nothing until resumed.",
  resume: "Resume it?",
};
let config = {actions: "off"};
let pending = null;   // the request value of the last promote/abort/retry sent from this page
let refreshing = null;
let events = new Map();  // this canary's Events by uid: from each refresh, and live from the stream
const EVENTS_SHOWN = 30;

function chartId(metric) {
  return metric.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "metric";
}

let requested = 0;

// Charts of two refreshes may arrive out of order: only the newest request's answer is shown.
async function svgInto(container, url) {
  const mine = String(++requested);
  container.dataset.requested = mine;
  const response = await fetch(url);
  const text = await response.text();
  if (container.dataset.requested !== mine) return;
  if (!response.ok) { container.textContent = "chart unavailable: " + text; return; }
  container.innerHTML = text;  // our own server's SVG (matplotlib escapes its text)
}

function fillTable(id, items, columns) {
  document.querySelector("#" + id + " tbody").replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    for (const column of columns) {
      const value = column(item);
      if (Array.isArray(value)) cell(tr, value[0], value[1]); else cell(tr, value);
    }
    return tr;
  }));
}

// An Event's time as the browser's local clock; today's without the date.
function clock(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  const today = when.toDateString() === new Date().toDateString();
  return today ? when.toLocaleTimeString() : when.toLocaleString();
}

function range(min, max) {
  return "[" + (min === null ? "" : min) + ", " + (max === null ? "" : max) + "]";
}

function show(detail) {
  document.title = "Canary " + detail.key;
  document.getElementById("title").textContent = detail.key;
  phaseBadge(document.getElementById("phase"), detail.phase, detail.suspended);
  weightBar(document.getElementById("weight"), detail);
  document.getElementById("failed").textContent = detail.failedChecks + " of " + detail.threshold;
  const ageElement = document.getElementById("age");
  ageElement.dataset.since = detail.since || "";
  ageElement.textContent = age(detail.since);
  document.getElementById("target").textContent = detail.target || "";
  document.getElementById("revision").textContent = detail.revision || "-";
  document.getElementById("promoted").textContent = detail.promotedRevision || "-";
  document.getElementById("git").textContent = detail.git
    ? "source " + detail.git.source + ", last applied commit " + (detail.git.commit || "-").slice(0, 12)
      + " (synced " + detail.git.synced + ")"
    : "-";
  document.getElementById("message").textContent = detail.message || "";
  fillTable("analysis", detail.metrics, [(m) => m.name, (m) => (m.value === null ? "no data" : number(m.value)),
    (m) => range(m.min, m.max), (m) => [m.verdict, "verdict-" + m.verdict], (m) => m.message]);
  fillTable("webhooks", detail.webhooks, [(w) => w.name, (w) => w.type,
    (w) => [w.result || "nothing refused", w.warning ? "warn" : ""], (w) => w.time || ""]);
  // Merged, not replaced: an Event the stream brought while this answer was on its way stays.
  for (const event of detail.events) events.set(event.uid, event);
  showEvents();
  const unread = document.getElementById("events-problem");
  unread.textContent = detail.eventsProblem || "";
  unread.hidden = !detail.eventsProblem;
  prometheusNote(detail.prometheus);
  const charts = document.getElementById("metric-charts");
  for (const metric of detail.charts) {
    const id = "chart-metric-" + chartId(metric);
    let container = document.getElementById(id);
    if (!container) {
      container = document.createElement("div");
      container.id = id; container.className = "chart"; container.dataset.metric = metric;
      charts.appendChild(container);
    }
    svgInto(container, base + "/metrics/" + encodeURIComponent(metric) + ".svg");
  }
  svgInto(document.getElementById("chart-weights"), base + "/weights.svg");
  if (pending && detail.handledRequest === pending) {
    document.getElementById("action-result").textContent = detail.requestRefused
      ? "refused by the controller: " + detail.requestRefused : "handled by the controller";
    pending = null;
  }
}

function showEvents() {
  const newest = [...events.values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
    .slice(0, EVENTS_SHOWN);
  events = new Map(newest.map((e) => [e.uid, e]));
  fillTable("events", newest, [(e) => clock(e.time), (e) => [e.type, e.type === "Warning" ? "warn" : ""],
    (e) => e.reason, (e) => e.message]);
}

// An Event from the stream, new or counted again: shown at once, without reloading the page's data.
function eventArrived(event) {
  events.set(event.uid, event);
  showEvents();
}

// Where the charts' Prometheus lines come from, or why they are missing (the charts keep the analysis values).
function prometheusNote(prometheus) {
  const note = document.getElementById("prometheus-note");
  note.hidden = !prometheus.server;
  if (!prometheus.server) return;
  const missing = Object.entries(prometheus.missing).map(([metric, why]) => metric + ": " + why);
  note.className = prometheus.problem ? "warn" : "muted";
  note.dataset.read = prometheus.problem ? "no" : "yes";
  note.textContent = prometheus.problem
    ? prometheus.problem + "; the charts show the analysis values only."
    : "The purple line is each metric's query over the run, from " + prometheus.server
      + (missing.length ? "; no line for " + missing.join("; ") : "") + ".";
}

async function refresh() {
  try {
    show(await getJson(base));
    document.getElementById("error").hidden = true;
  } catch (error) {
    const box = document.getElementById("error");
    box.textContent = String(error.message || error);
    box.hidden = false;
  }
}

function refreshSoon() {
  if (refreshing) return;
  refreshing = setTimeout(() => { refreshing = null; refresh(); }, 250);
}

async function gitsync() {
  const panel = document.getElementById("gitsync");
  const state = await getJson("/api/gitsync");
  panel.replaceChildren();
  const line = (text, className) => {
    const p = document.createElement("p"); p.textContent = text; if (className) p.className = className;
    panel.appendChild(p);
  };
  if (state.problem) line(state.problem, "muted");
  for (const s of state.sources) {
    line("source " + s.source + ": commit " + (s.commit || "-") + ", synced " + s.synced + ", " + s.objects
      + " objects, error: " + (s.error || "-"), s.error ? "warn" : "");
    for (const ahead of s.ahead) line(ahead, "warn");
  }
  if (!state.problem && state.sources.length === 0) line("no source has been synced", "muted");
}

function confirmThen(action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = "Canary " + namespace + "/" + name + ": " + WHAT[action];
  dialog.returnValue = "";
  dialog.onclose = () => { if (dialog.returnValue === "yes") act(action); };
  dialog.showModal();
}

async function act(action) {
  const result = document.getElementById("action-result");
  const token = document.getElementById("token").value;
  if (token) sessionStorage.setItem("canary-token", token);
  result.textContent = action + "…";
  const answer = await postAction(base + "/" + action, token);
  if (!answer.ok) {
    result.textContent = action + " refused (" + answer.status + "): " + (answer.body.error || "");
    result.className = "error";
    return;
  }
  result.className = "";
  pending = answer.body.request;
  result.textContent = action + " requested by " + answer.body.who
    + (pending ? "; waiting for the controller" : "");
}

document.addEventListener("DOMContentLoaded", async () => {
  config = await getJson("/api/config");
  for (const button of document.querySelectorAll("button[data-action]")) {
    if (config.actions === "off") {
      button.disabled = true;
      button.title = "read-only: the controller serves this dashboard without --dashboard-actions";
    }
    button.addEventListener("click", () => confirmThen(button.dataset.action));
  }
  document.getElementById("token-box").addEventListener("submit", (event) => event.preventDefault());
  if (config.actions === "token") {
    document.getElementById("token-box").hidden = false;
    document.getElementById("token").value = sessionStorage.getItem("canary-token") || "";
  }
  follow("/api/stream?namespace=" + encodeURIComponent(namespace) + "&canary=" + encodeURIComponent(name), (row) => {
    if (row.key === namespace + "/" + name) refreshSoon();
  }, () => { refresh(); gitsync().catch((e) => console.error(e)); }, eventArrived);
  setInterval(() => { const a = document.getElementById("age"); a.textContent = age(a.dataset.since); }, 1000);
});
