// Shared by the pages: API calls, the CSRF header, ages, table cells and the live event stream.
"use strict";

const PHASES = ["Initializing", "Initialized", "Waiting", "Progressing", "WaitingPromotion", "Promoting",
  "Finalising", "Succeeded", "Failed", "Terminating", "Terminated", "Invalid"];

function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("canary_csrf="));
  return found ? decodeURIComponent(found.split("=")[1]) : "";
}

async function getJson(url) {
  const response = await fetch(url, {headers: {Accept: "application/json"}});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function postAction(url, token) {
  const headers = {"X-Canary-CSRF": csrfToken()};
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(url, {method: "POST", headers, credentials: "same-origin"});
  const body = await response.json().catch(() => ({}));
  return {ok: response.ok, status: response.status, body};
}

// kubectl's style: 45s, 12m, 3h, 2d (as canary status prints AGE).
function age(since) {
  if (!since) return "";
  let seconds = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size * (unit === "m" ? 1 : 2)) return Math.floor(seconds / size) + unit;
  }
  return seconds + "s";
}

// A metric's value as people read it: four significant digits.
function number(value) {
  return value === null || value === undefined ? "" : String(Number(Number(value).toPrecision(4)));
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function phaseBadge(element, phase, suspended) {
  element.textContent = suspended ? phase + " (paused)" : phase;
  element.className = "phase phase-" + phase;
  element.dataset.phase = phase;
}

// The canary weight against the weight that ends the run; iterations for blue/green and A/B runs.
function weightBar(element, r) {
  let bar = element.classList.contains("bar") ? element : element.querySelector(".bar");
  if (!bar) { bar = document.createElement("span"); bar.className = "bar"; element.appendChild(bar); }
  let fill = bar.querySelector(".fill");
  let text = bar.querySelector(".text");
  if (!fill) {
    fill = document.createElement("span"); fill.className = "fill"; bar.appendChild(fill);
    text = document.createElement("span"); text.className = "text"; bar.appendChild(text);
  }
  const [done, total] = r.progress;
  fill.style.width = Math.max(0, Math.min(100, total ? (100 * done) / total : 0)) + "%";
  if (r.phase === "Succeeded") text.textContent = "promoted";
  else if (r.strategy === "canary" || !r.strategy) text.textContent = r.weight + "% (of " + r.maxWeight + ")";
  else text.textContent = "iteration " + done + "/" + total + ", " + r.weight + "%";
  bar.dataset.weight = String(r.weight);
  bar.dataset.phase = r.phase;
}

// Server-sent events fed by the cluster's watch; onOpen runs at each (re)connection, so a page reloads
// its data once it is subscribed and misses no change. A canary page's stream also carries its Events (onEvent).
function follow(url, onRow, onOpen, onEvent) {
  const live = document.getElementById("live");
  const source = new EventSource(url);
  source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; onOpen(); });
  source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
  source.addEventListener("canary", (event) => onRow(JSON.parse(event.data)));
  if (onEvent) source.addEventListener("event", (event) => onEvent(JSON.parse(event.data)));
  return source;
}
