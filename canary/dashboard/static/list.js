// The list page: every canary, filtered by namespace and phase, updated row by row from the stream.
"use strict";

const rows = new Map();
const filters = {namespace: new URLSearchParams(location.search).get("namespace") || "",
  phase: new URLSearchParams(location.search).get("phase") || ""};

function render() {
  const tbody = document.querySelector("#canaries tbody");
  const shown = [...rows.values()]
    .filter((r) => (!filters.namespace || r.namespace === filters.namespace) && (!filters.phase || r.phase === filters.phase))
    .sort((a, b) => a.key.localeCompare(b.key));
  tbody.replaceChildren(...shown.map(toRow));
  document.getElementById("empty").hidden = shown.length > 0;
  document.getElementById("count").textContent = shown.length + " of " + rows.size;
  const namespaces = document.getElementById("filter-namespace");
  const known = new Set([...namespaces.options].map((o) => o.value));
  for (const namespace of new Set([...rows.values()].map((r) => r.namespace))) {
    if (!known.has(namespace)) namespaces.add(new Option(namespace, namespace));
  }
  namespaces.value = filters.namespace;
}

function toRow(r) {
  const tr = document.createElement("tr");
  tr.dataset.key = r.key;
  cell(tr, r.namespace);
  const name = cell(tr, "");
  const link = document.createElement("a");
  link.href = "/canaries/" + encodeURIComponent(r.namespace) + "/" + encodeURIComponent(r.name);
  link.textContent = r.name;
  name.appendChild(link);
  phaseBadge(cell(tr, "").appendChild(document.createElement("span")), r.phase, r.suspended);
  weightBar(cell(tr, "", "weight"), r);
  cell(tr, r.failedChecks + "/" + r.threshold, r.failedChecks > 0 ? "failed warn" : "failed");
  const ageCell = cell(tr, age(r.since), "age");
  ageCell.dataset.since = r.since || "";
  cell(tr, r.message, "message");
  return tr;
}

async function reload() {
  for (const r of await getJson("/api/canaries")) rows.set(r.key, r);
  render();
}

function onRow(r) {
  if (r.deleted) rows.delete(r.key); else rows.set(r.key, r);
  render();
}

document.addEventListener("DOMContentLoaded", async () => {
  const config = await getJson("/api/config");
  document.getElementById("scope").textContent = (config.namespace ? "namespace " + config.namespace : "every namespace")
    + " · " + config.servedBy + (config.actions === "off" ? " · read-only" : "");
  const phases = document.getElementById("filter-phase");
  for (const phase of PHASES) phases.add(new Option(phase, phase));
  phases.value = filters.phase;
  for (const [id, key] of [["filter-namespace", "namespace"], ["filter-phase", "phase"]]) {
    document.getElementById(id).addEventListener("change", (event) => {
      filters[key] = event.target.value;
      const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
      history.replaceState(null, "", query.toString() ? "?" + query : location.pathname);
      render();
    });
  }
  follow("/api/stream", onRow, () => reload().catch((e) => console.error(e)));
  setInterval(() => document.querySelectorAll("td.age").forEach((td) => { td.textContent = age(td.dataset.since); }), 1000);
});
