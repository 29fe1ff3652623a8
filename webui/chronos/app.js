// Chronos's page: the jobs with their last runs, a form to create and edit them, run now,
// delete, and the dependency graph drawn as inline SVG. It reads only the public API
// (/v1/scheduler/*), polling it: Chronos has no event stream.
"use strict";

const API = "/v1/scheduler";
const POLL_MS = 2000;
const READ_ONLY = ["successCount", "errorCount", "lastSuccess", "lastError",
  "errorsSinceLastSuccess"];
const SVG = "http://www.w3.org/2000/svg";

const state = {
  jobs: [],
  graph: {nodes: new Map(), links: []},  // from graph/csv: name -> {last, state}
  filter: "",
  rendered: "",
  editing: null,  // the job the dialog edits (its JSON); null: creating
};

// An SVG element with attributes.
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children) {
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Calls the API (under /v1/scheduler); resolves with the body (parsed JSON when it is JSON),
// rejects with a readable message.
async function api(method, path, body) {
  const {json, text} = await fetchJson(method, API + path, {body});
  return json !== null ? json : text;
}

// The connection indicator; its text changes only when the state does (it is a live region).
function setLive(text, ok) {
  const live = $("live");
  if (live.textContent !== text) live.textContent = text;
  live.className = ok ? "live on" : "live off";
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function when(iso) {
  if (!iso) return "—";
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  const seconds = Math.round((Date.now() - ms) / 1000);
  const text = seconds < 60 ? `${Math.max(seconds, 0)} s ago`
    : seconds < 3600 ? `${Math.round(seconds / 60)} min ago`
      : seconds < 86400 ? `${Math.round(seconds / 3600)} h ago` : new Date(ms).toLocaleString();
  return h("time", {datetime: iso, title: iso}, text);
}

// ---- Data ------------------------------------------------------------------------------------

function parseCsv(text) {
  const nodes = new Map();
  const links = [];
  for (const line of String(text).split("\n")) {
    const cells = line.split(",");
    if (cells[0] === "node" && cells.length >= 4) {
      nodes.set(cells[1], {last: cells[2], state: cells[3]});
    } else if (cells[0] === "link" && cells.length >= 3) {
      links.push([cells[1], cells[2]]);
    }
  }
  return {nodes, links};
}

let busy = false;

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const [jobs, csv] = await Promise.all([api("GET", "/jobs"), api("GET", "/graph/csv")]);
    state.jobs = Array.isArray(jobs) ? jobs : [];
    state.graph = parseCsv(csv);
    setLive(`polling every ${POLL_MS / 1000} s`, true);
    if ($("message").dataset.kind === "load") {
      showMessage("");
      delete $("message").dataset.kind;
    }
    render();
  } catch (e) {
    setLive("not reachable", false);
    showMessage(`Cannot read the jobs: ${e.message}`);
    $("message").dataset.kind = "load";
  } finally {
    busy = false;
  }
}

async function loadLeader() {
  try {
    const leader = await api("GET", "/leader");
    $("info").textContent = leader && leader.leader ? `leader ${leader.leader}` : "";
  } catch (e) {
    $("info").textContent = "";
  }
}

// ---- Rendering -------------------------------------------------------------------------------

// The last run's outcome: the later of lastSuccess and lastError (as graph/csv says).
function lastStatus(job) {
  const node = state.graph.nodes.get(job.name);
  if (node) return node.last;
  if (!job.lastSuccess && !job.lastError) return "fresh";
  if (!job.lastError) return "success";
  if (!job.lastSuccess) return "failure";
  return Date.parse(job.lastSuccess) >= Date.parse(job.lastError) ? "success" : "failure";
}

function render() {
  const snapshot = JSON.stringify([state.jobs, [...state.graph.nodes], state.graph.links,
    state.filter]);
  if (snapshot === state.rendered) return;
  state.rendered = snapshot;
  const focusKey = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.key : undefined;
  renderJobs();
  renderGraph();
  if (focusKey) {
    const again = document.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
    if (again) again.focus();
  }
}

function matches(job) {
  const f = state.filter.toLowerCase();
  return !f || [job.name, job.command, job.owner, job.description]
    .some((v) => (v || "").toLowerCase().includes(f));
}

function renderJobs() {
  const rows = state.jobs.filter(matches).map((job) => {
    const last = lastStatus(job);
    const node = state.graph.nodes.get(job.name);
    const running = node && node.state !== "idle" ? node.state : null;
    const statusText = job.disabled ? "disabled" : last === "fresh" ? "never run" : last;
    return h("tr", {"data-job": job.name},
      h("th", {scope: "row"}, job.name,
        job.description ? h("div", {class: "muted"}, job.description) : null),
      h("td", {},
        h("span", {class: `status ${job.disabled ? "disabled" : last}`}, statusText),
        running ? h("span", {class: "state"}, running) : null),
      h("td", {}, job.parents && job.parents.length
        ? `after ${job.parents.join(", ")}` : h("code", {}, job.schedule || "")),
      h("td", {class: "success-count"}, job.successCount || 0),
      h("td", {class: "error-count"}, job.errorCount || 0),
      h("td", {}, when(job.lastSuccess)),
      h("td", {}, when(job.lastError)),
      h("td", {class: "actions"},
        h("button", {"data-key": `run:${job.name}`, "aria-label": `Run ${job.name} now`,
          onclick: () => runNow(job)}, "Run now"),
        h("button", {"data-key": `edit:${job.name}`, "aria-label": `Edit ${job.name}`,
          onclick: () => openEdit(job)}, "Edit"),
        h("button", {class: "danger", "data-key": `delete:${job.name}`,
          "aria-label": `Delete ${job.name}`, onclick: () => remove(job)}, "Delete")));
  });
  $("jobs").replaceChildren(...rows);
  $("jobs-empty").hidden = state.jobs.length > 0;
}

// Lays the graph out in columns by depth (a job sits one column right of its deepest parent)
// and draws it: boxes for jobs, curves with arrowheads from parent to child.
function renderGraph() {
  const {nodes, links} = state.graph;
  const names = [...nodes.keys()];
  const container = $("graph");
  if (names.length === 0) {
    container.replaceChildren(h("p", {class: "muted"}, "No jobs to draw."));
    return;
  }
  const parents = new Map(names.map((n) => [n, []]));
  for (const [from, to] of links) if (parents.has(to)) parents.get(to).push(from);
  const depth = new Map();
  const depthOf = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0;  // a cycle cannot be stored; be safe anyway
    seen.add(name);
    const d = Math.max(-1, ...(parents.get(name) || []).filter((p) => nodes.has(p))
      .map((p) => depthOf(p, seen))) + 1;
    depth.set(name, d);
    return d;
  };
  names.forEach((n) => depthOf(n, new Set()));
  const columns = [];
  for (const name of names) (columns[depth.get(name)] ||= []).push(name);

  const boxHeight = 30;
  const rowGap = 16;
  const colGap = 70;
  const pad = 12;
  const widthOf = (name) => Math.max(90, name.length * 7.5 + 24);
  const colWidth = columns.map((col) => Math.max(...col.map(widthOf)));
  const position = new Map();
  let x = pad;
  columns.forEach((col, c) => {
    col.forEach((name, r) => {
      position.set(name, {x, y: pad + r * (boxHeight + rowGap), w: widthOf(name)});
    });
    x += colWidth[c] + colGap;
  });
  const width = x - colGap + pad;
  const height = pad * 2 + Math.max(...columns.map((c) => c.length)) * (boxHeight + rowGap) - rowGap;

  const description = links.length
    ? "Dependencies: " + links.map(([a, b]) => `${b} runs after ${a}`).join("; ")
    : "No dependencies between jobs";
  const svg = s("svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `Dependency graph. ${description}`});
  svg.append(s("defs", {}, s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
  s("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#8892a2"}))));
  for (const [from, to] of links) {
    const a = position.get(from);
    const b = position.get(to);
    if (!a || !b) continue;
    const x1 = a.x + a.w;
    const y1 = a.y + boxHeight / 2;
    const x2 = b.x;
    const y2 = b.y + boxHeight / 2;
    const mid = (x1 + x2) / 2;
    svg.append(s("path", {class: "edge", "data-from": from, "data-to": to,
      d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)"}));
  }
  for (const name of names) {
    const p = position.get(name);
    const node = nodes.get(name);
    const label = `${name}: ${node.last === "fresh" ? "never run" : `last run ${node.last}`}` +
      (node.state !== "idle" ? `, ${node.state}` : "");
    svg.append(s("g", {class: `node ${node.last} ${node.state}`, "data-job": name, tabindex: 0,
      role: "img", "aria-label": label, transform: `translate(${p.x},${p.y})`},
    s("title", {}, label),
    s("rect", {width: p.w, height: boxHeight, rx: 5, ry: 5}),
    s("text", {x: p.w / 2, y: boxHeight / 2 + 4, "text-anchor": "middle"}, name)));
  }
  container.replaceChildren(svg);
}

// ---- Actions ---------------------------------------------------------------------------------

function runNow(job) {
  act(`Starting ${job.name}`, () => api("PUT", `/job/${encodeURIComponent(job.name)}`));
}

function remove(job) {
  const children = state.graph.links.filter(([a]) => a === job.name).map(([, b]) => b);
  confirmThen(`Delete ${job.name}?`, `Its runs are killed and the job is removed.` +
    (children.length ? ` Its children lose it as a parent (${children.join(", ")}); a child ` +
      `left without parents is deleted too.` : ""), "Delete",
  () => act(`Deleting ${job.name}`, () => api("DELETE", `/job/${encodeURIComponent(job.name)}`)));
}

function kind() {
  return document.querySelector('input[name="kind"]:checked').value;
}

function setKind(next) {
  document.querySelector(`input[name="kind"][value="${next}"]`).checked = true;
  for (const el of document.querySelectorAll(".when-scheduled")) el.hidden = next !== "scheduled";
  for (const el of document.querySelectorAll(".when-dependent")) el.hidden = next !== "dependent";
  $("j-schedule").required = next === "scheduled";
  $("j-parents").required = next === "dependent";
}

function jobToForm(job) {
  $("j-name").value = job.name || "";
  $("j-command").value = job.command || "";
  $("j-schedule").value = job.schedule || "";
  $("j-timezone").value = job.scheduleTimeZone || "";
  $("j-parents").value = (job.parents || []).join(", ");
  $("j-epsilon").value = job.epsilon || "PT60S";
  $("j-retries").value = job.retries ?? 2;
  $("j-cpus").value = job.cpus ?? 0.1;
  $("j-mem").value = job.mem ?? 32;
  $("j-disk").value = job.disk ?? 0;
  $("j-owner").value = job.owner || "";
  $("j-description").value = job.description || "";
  $("j-disabled").checked = !!job.disabled;
  setKind(job.parents && job.parents.length ? "dependent" : "scheduled");
}

function openDialog(job) {
  state.editing = job;
  $("job-dialog-title").textContent = job ? `Edit ${job.name}` : "New job";
  $("job-submit").textContent = job ? "Save" : "Create";
  $("j-name").readOnly = !!job;
  jobToForm(job || {schedule: `R/${new Date(Date.now() + 3600e3).toISOString()
    .replace(/\.\d+Z$/, "Z")}/PT24H`});
  $("job-error").textContent = "";
  $("job-dialog").showModal();
  (job ? $("j-command") : $("j-name")).focus();
}

function openEdit(job) {
  openDialog(job);
}

async function submitJob(event) {
  event.preventDefault();
  // An edit keeps what the form does not show (container, environment, uris, ...).
  const job = Object.assign({}, state.editing || {});
  for (const key of READ_ONLY) delete job[key];
  job.name = $("j-name").value.trim();
  job.command = $("j-command").value;
  job.epsilon = $("j-epsilon").value.trim() || "PT60S";
  job.retries = Number($("j-retries").value);
  job.cpus = Number($("j-cpus").value);
  job.mem = Number($("j-mem").value);
  job.disk = Number($("j-disk").value);
  job.owner = $("j-owner").value.trim();
  job.description = $("j-description").value;
  job.disabled = $("j-disabled").checked;
  let path;
  if (kind() === "dependent") {
    job.parents = $("j-parents").value.split(/[\s,]+/).filter(Boolean);
    delete job.schedule;
    delete job.scheduleTimeZone;
    delete job.cron;
    path = "/dependency";
  } else {
    job.schedule = $("j-schedule").value.trim();
    const zone = $("j-timezone").value.trim();
    if (zone) job.scheduleTimeZone = zone;
    else delete job.scheduleTimeZone;
    delete job.parents;
    path = "/iso8601";
  }
  try {
    await api("POST", path, job);
    $("job-dialog").close();
  } catch (e) {
    $("job-error").textContent = e.message;
  }
  refresh();
}

// ---- Wiring ----------------------------------------------------------------------------------

function init() {
  $("new-job").addEventListener("click", () => openDialog(null));
  $("job-form").addEventListener("submit", submitJob);
  $("job-cancel").addEventListener("click", () => $("job-dialog").close());
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener("change", () => setKind(kind()));
  }
  wireConfirmDialog();
  $("filter").addEventListener("input", (event) => {
    state.filter = event.target.value.trim();
    render();
  });
  loadLeader();
  refresh();
  setInterval(refresh, POLL_MS);
}

init();
