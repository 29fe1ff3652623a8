// Marathon's page: the apps, their instances, deployments and the launch queue, read from the
// public REST API (/v2/*) and kept current by the event stream (/v2/events), with polling as
// the fallback. Plain JavaScript, no dependencies; everything it shows a script can get too.
"use strict";

const POLL_MS = 5000;        // polling interval (also the safety net while the stream is up)
const EVENT_DEBOUNCE_MS = 250;

const state = {
  apps: [],
  deployments: [],
  queue: [],
  selected: null,   // id of the app whose details are open
  filter: "",
  rendered: "",     // what the last render drew, to skip identical redraws
  editing: null,    // id of the app the dialog edits; null: creating
};

// Calls the API; resolves with the parsed JSON (or null), rejects with a readable message that
// lists a validation failure's details.
async function api(method, path, body) {
  const {json} = await fetchJson(method, path, {
    body,
    headers: {Accept: "application/json"},
    describe: (message, answer) => {
      if (!answer || !Array.isArray(answer.details)) return message;
      const details = answer.details.map((d) => `${d.path || ""}: ${(d.errors || []).join(", ")}`);
      return details.length ? message + "\n" + details.join("\n") : message;
    },
  });
  return json;
}

// The API path of an app: ids are absolute ("/group/web"); each segment is encoded.
function appPath(id) {
  return "/v2/apps" + id.split("/").map(encodeURIComponent).join("/");
}

function showMessage(text, info) {
  const el = $("message");
  el.textContent = text;
  el.className = info ? "message info" : "message";
  el.hidden = !text;
}

function timeAgo(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

// ---- Data ------------------------------------------------------------------------------------

let refreshing = null;
let refreshAgain = false;

async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      const [apps, deployments, queue] = await Promise.all([
        api("GET", "/v2/apps?embed=apps.tasks"),
        api("GET", "/v2/deployments"),
        api("GET", "/v2/queue"),
      ]);
      state.apps = (apps && apps.apps) || [];
      state.deployments = deployments || [];
      state.queue = (queue && queue.queue) || [];
      if ($("message").className === "message" && $("message").dataset.kind === "load") {
        showMessage("");
      }
      render();
    } catch (e) {
      showMessage(`Cannot read Marathon's state: ${e.message}`);
      $("message").dataset.kind = "load";
    }
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
  if (refreshAgain) {
    refreshAgain = false;
    return refresh();
  }
}

async function loadInfo() {
  try {
    const info = await api("GET", "/v2/info");
    const parts = [`${info.name} ${info.version}`];
    if (info.leader) parts.push(`leader ${info.leader}`);
    if (info.frameworkId) parts.push(`framework ${info.frameworkId}`);
    $("info").textContent = parts.join(" · ");
  } catch (e) {
    $("info").textContent = "";
  }
}

// Live updates: every event on /v2/events asks for a refresh (debounced); polling runs too, so
// a dropped stream only slows the page down.
function connectEvents() {
  const live = $("live");
  if (!window.EventSource) {
    live.textContent = "polling";
    live.className = "live off";
    return;
  }
  let timer = null;
  const source = new EventSource("/v2/events");
  const poke = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, EVENT_DEBOUNCE_MS);
  };
  const show = (text, on) => {
    if (live.textContent !== text) live.textContent = text;
    live.className = on ? "live on" : "live off";
  };
  source.onopen = () => show("live", true);
  source.onerror = () => show("polling", false);
  source.onmessage = poke;
  for (const type of ["status_update_event", "deployment_info", "deployment_success",
    "deployment_failed", "deployment_step_success", "deployment_step_failure",
    "api_post_event", "app_terminated_event", "instance_changed_event",
    "health_status_changed_event", "instance_health_changed_event", "failed_health_check_event",
    "add_health_check_event", "remove_health_check_event", "group_change_success",
    "unhealthy_task_kill_event", "unhealthy_instance_kill_event"]) {
    source.addEventListener(type, poke);
  }
  window.addEventListener("pagehide", () => source.close());
}

// ---- Rendering -------------------------------------------------------------------------------

function appStatus(app) {
  if (state.deployments.some((d) => (d.affectedApps || []).includes(app.id))) return "Deploying";
  const queued = state.queue.find((q) => q.app && q.app.id === app.id);
  if (queued && queued.delay && queued.delay.timeLeftSeconds > 0 && !queued.delay.overdue) {
    return "Delayed";
  }
  if (queued) return "Waiting";
  if (app.instances === 0) return "Suspended";
  return "Running";
}

// The health bar: healthy, unhealthy, running without health information, staged, and the rest
// of the wanted instances, as segments of one bar.
function healthBar(app) {
  const healthy = app.tasksHealthy || 0;
  const unhealthy = app.tasksUnhealthy || 0;
  const running = Math.max((app.tasksRunning || 0) - healthy - unhealthy, 0);
  const staged = app.tasksStaged || 0;
  const total = Math.max(app.instances || 0, healthy + unhealthy + running + staged, 1);
  const segment = (cls, n) =>
    n > 0 ? h("span", {class: cls, style: `width:${(100 * n) / total}%`}) : null;
  const text = `${healthy} healthy, ${unhealthy} unhealthy, ${app.tasksRunning || 0} running, ` +
    `${staged} staged of ${app.instances} instances`;
  return h("div", {class: "health", role: "img", "aria-label": text, title: text},
    segment("healthy", healthy), segment("unhealthy", unhealthy), segment("running", running),
    segment("staged", staged));
}

function render() {
  const snapshot = JSON.stringify([state.apps, state.deployments, state.queue, state.selected,
    state.filter]);
  if (snapshot === state.rendered) return;
  state.rendered = snapshot;
  // Keep keyboard focus on the same control across the redraw.
  const focusKey = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.key : undefined;
  renderApps();
  renderDetail();
  renderDeployments();
  renderQueue();
  if (focusKey) {
    const again = document.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
    if (again) again.focus();
  }
}

function renderApps() {
  const rows = state.apps
    .filter((app) => !state.filter || app.id.includes(state.filter))
    .map((app) => {
      const status = appStatus(app);
      return h("tr", {class: app.id === state.selected ? "selected" : null, "data-app": app.id},
        h("td", {}, h("button", {class: "link", "data-key": `open:${app.id}`,
          "aria-expanded": app.id === state.selected ? "true" : "false",
          onclick: () => select(app.id === state.selected ? null : app.id)}, app.id)),
        h("td", {}, h("span", {class: `status ${status.toLowerCase()}`}, status)),
        h("td", {}, healthBar(app)),
        h("td", {class: "running-count"}, `${app.tasksRunning || 0} / ${app.instances}`),
        h("td", {}, app.cpus),
        h("td", {}, `${app.mem} MiB`),
        h("td", {class: "actions"}, appActions(app)));
    });
  $("apps").replaceChildren(...rows);
  $("apps-empty").hidden = rows.length > 0 || state.apps.length > 0;
}

function appActions(app) {
  return [
    h("button", {"data-key": `scale:${app.id}`, "aria-label": `Scale ${app.id}`,
      onclick: () => openScale(app)}, "Scale"),
    h("button", {"data-key": `restart:${app.id}`, "aria-label": `Restart ${app.id}`,
      onclick: () => restart(app)}, "Restart"),
    h("button", {"data-key": `edit:${app.id}`, "aria-label": `Edit ${app.id}`,
      onclick: () => openEdit(app)}, "Edit"),
    h("button", {class: "danger", "data-key": `destroy:${app.id}`,
      "aria-label": `Destroy ${app.id}`, onclick: () => destroy(app)}, "Destroy"),
  ];
}

function select(id) {
  state.selected = id;
  render();
}

function renderDetail() {
  const app = state.apps.find((a) => a.id === state.selected);
  $("app-detail").hidden = !app;
  if (!app) return;
  $("detail-title").textContent = app.id;
  $("detail-actions").replaceChildren(...appActions(app).map((b) => {
    b.dataset.key = "detail-" + b.dataset.key;
    return b;
  }), h("button", {"data-key": "close-detail", onclick: () => select(null)}, "Close"));
  const config = [
    ["Command", app.cmd || (app.args || []).join(" ") || "—"],
    ["Resources", `${app.cpus} CPUs, ${app.mem} MiB memory, ${app.disk || 0} MiB disk`],
    ["Instances", app.instances],
    ["Ports", (app.portDefinitions || []).map((p) => p.port).join(", ") || "—"],
    ["Container", app.container ? `${app.container.type || ""} ${
      (app.container.docker && app.container.docker.image) || ""}` : "—"],
    ["Health checks", (app.healthChecks || []).map((c) => c.protocol || "HTTP").join(", ") || "—"],
    ["Version", app.version || ""],
  ];
  $("detail-config").replaceChildren(...config.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const tasks = app.tasks || [];
  $("instances").replaceChildren(...tasks.map((task) => {
    const health = (task.healthCheckResults || []);
    const healthText = health.length === 0 ? "—"
      : health.every((r) => r.alive) ? "healthy" : "unhealthy";
    const endpoints = (task.ports || []).map((port) =>
      h("a", {href: `http://${task.host}:${port}/`, target: "_blank", rel: "noopener"},
        `${task.host}:${port}`));
    return h("tr", {"data-task": task.id},
      h("td", {}, h("code", {}, task.id)),
      h("td", {class: "task-state"}, (task.state || "").replace(/^TASK_/, "").toLowerCase()),
      h("td", {}, healthText),
      h("td", {}, endpoints.length ? endpoints.flatMap((a, i) => (i ? [" ", a] : [a]))
        : (task.host || "—")),
      h("td", {}, task.startedAt ? h("time", {datetime: task.startedAt, title: task.startedAt},
        timeAgo(task.startedAt)) : "—"),
      h("td", {class: "actions"}, h("button", {class: "danger", "data-key": `kill:${task.id}`,
        "aria-label": `Kill ${task.id}`, onclick: () => killTask(app, task)}, "Kill")));
  }));
  $("instances-empty").hidden = tasks.length > 0;
}

function renderDeployments() {
  $("deployments-count").textContent = state.deployments.length;
  $("deployments").replaceChildren(...state.deployments.map((d) => {
    const actions = (d.currentActions || []).map((a) => `${a.action} ${a.app}`).join(", ");
    return h("tr", {"data-deployment": d.id},
      h("td", {}, h("code", {}, d.id)),
      h("td", {}, (d.affectedApps || []).join(", ")),
      h("td", {}, actions || "—"),
      h("td", {}, h("progress", {value: d.currentStep, max: d.totalSteps || 1,
        "aria-label": `step ${d.currentStep} of ${d.totalSteps}`}),
      ` ${d.currentStep} / ${d.totalSteps}`),
      h("td", {}, h("time", {datetime: d.version, title: d.version}, timeAgo(d.version))),
      h("td", {class: "actions"},
        h("button", {"data-key": `rollback:${d.id}`, "aria-label": `Roll back ${d.id}`,
          onclick: () => cancelDeployment(d, false)}, "Roll back"),
        h("button", {class: "danger", "data-key": `stop:${d.id}`, "aria-label": `Stop ${d.id}`,
          onclick: () => cancelDeployment(d, true)}, "Stop")));
  }));
  $("deployments-empty").hidden = state.deployments.length > 0;
}

function renderQueue() {
  $("queue-count").textContent = state.queue.length;
  $("queue").replaceChildren(...state.queue.map((q) => {
    const id = q.app ? q.app.id : "";
    const delay = q.delay || {};
    return h("tr", {"data-queued": id},
      h("td", {}, id),
      h("td", {}, q.count),
      h("td", {}, delay.overdue ? "overdue: no matching offers" :
        delay.timeLeftSeconds > 0 ? `${delay.timeLeftSeconds} s left` : "none"),
      h("td", {}, q.since ? h("time", {datetime: q.since, title: q.since}, timeAgo(q.since)) : ""),
      h("td", {class: "actions"}, h("button", {"data-key": `delay:${id}`,
        "aria-label": `Reset the launch delay of ${id}`, onclick: () => resetDelay(id)},
      "Reset delay")));
  }));
  $("queue-empty").hidden = state.queue.length > 0;
}

// ---- Actions ---------------------------------------------------------------------------------

function restart(app) {
  act(`Restarting ${app.id}`, () => api("POST", `${appPath(app.id)}/restart`));
}

function destroy(app) {
  confirmThen(`Destroy ${app.id}?`,
    `Its ${app.tasksRunning || 0} running instances are killed and the app is removed.`,
    "Destroy", () => act(`Destroying ${app.id}`, async () => {
      await api("DELETE", appPath(app.id));
      if (state.selected === app.id) state.selected = null;
    }));
}

function killTask(app, task) {
  act(`Killing ${task.id}`, () =>
    api("DELETE", `${appPath(app.id)}/tasks/${encodeURIComponent(task.id)}`));
}

function cancelDeployment(deployment, force) {
  const what = force ? "Stop" : "Roll back";
  confirmThen(`${what} deployment?`, force
    ? "The deployment stops where it is; the apps keep their new definitions."
    : "The apps return to the definitions they had before this deployment.", what,
  () => act(`${what} ${deployment.id}`, () =>
    api("DELETE", `/v2/deployments/${encodeURIComponent(deployment.id)}${force ? "?force=true" : ""}`)));
}

function resetDelay(id) {
  act(`Resetting the delay of ${id}`, () => api("DELETE", `/v2/queue${id}/delay`));
}

function openScale(app) {
  state.scaling = app.id;
  $("scale-title").textContent = `Scale ${app.id}`;
  $("scale-instances").value = app.instances;
  $("scale-error").textContent = "";
  $("scale-dialog").showModal();
  $("scale-instances").select();
}

async function submitScale(event) {
  event.preventDefault();
  const instances = Number($("scale-instances").value);
  if (!Number.isInteger(instances) || instances < 0) {
    $("scale-error").textContent = "Instances must be a whole number, 0 or more.";
    return;
  }
  try {
    await api("PUT", appPath(state.scaling), {instances});
    $("scale-dialog").close();
  } catch (e) {
    $("scale-error").textContent = e.message;
  }
  refresh();
}

// ---- The create / edit dialog ----------------------------------------------------------------

// Read-only fields an app definition carries when read back; a PUT must not send them.
const READ_ONLY = ["tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
  "deployments", "version", "versionInfo", "lastTaskFailure", "readinessCheckResults"];

function formToApp() {
  const app = {id: $("f-id").value.trim()};
  const cmd = $("f-cmd").value.trim();
  if (cmd) app.cmd = cmd;
  app.cpus = Number($("f-cpus").value);
  app.mem = Number($("f-mem").value);
  app.disk = Number($("f-disk").value);
  app.instances = Number($("f-instances").value);
  const ports = $("f-ports").value.split(/[\s,]+/).filter(Boolean).map(Number);
  if (ports.length) app.portDefinitions = ports.map((port) => ({port}));
  const env = {};
  for (const line of $("f-env").value.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) env[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  if (Object.keys(env).length) app.env = env;
  return app;
}

function appToForm(app) {
  $("f-id").value = app.id || "";
  $("f-cmd").value = app.cmd || "";
  $("f-cpus").value = app.cpus ?? 0.1;
  $("f-mem").value = app.mem ?? 32;
  $("f-disk").value = app.disk ?? 0;
  $("f-instances").value = app.instances ?? 1;
  $("f-ports").value = (app.portDefinitions || []).map((p) => p.port).join(", ");
  $("f-env").value = Object.entries(app.env || {})
    .filter(([, v]) => typeof v === "string").map(([k, v]) => `${k}=${v}`).join("\n");
}

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function setMode(next) {
  document.querySelector(`input[name="mode"][value="${next}"]`).checked = true;
  $("form-fields").hidden = next !== "form";
  $("json-fields").hidden = next !== "json";
  $("f-id").required = next === "form";
}

function switchMode() {
  const next = mode();
  $("app-error").textContent = "";
  if (next === "json") {
    // Keep what the JSON had beyond the form's fields (health checks, container, ...).
    let base = {};
    try {
      base = JSON.parse($("f-json").value || "{}");
    } catch (e) {
      base = {};
    }
    const merged = Object.assign(base, formToApp());
    $("f-json").value = JSON.stringify(merged, null, 2);
  } else {
    try {
      appToForm(JSON.parse($("f-json").value || "{}"));
    } catch (e) {
      $("app-error").textContent = `The JSON does not parse: ${e.message}`;
      setMode("json");
      return;
    }
  }
  setMode(next);
}

function openCreate() {
  state.editing = null;
  $("app-dialog-title").textContent = "Create application";
  $("app-submit").textContent = "Create";
  $("f-id").readOnly = false;
  appToForm({});
  $("f-json").value = "";
  $("app-error").textContent = "";
  setMode("form");
  $("app-dialog").showModal();
  $("f-id").focus();
}

function openEdit(app) {
  state.editing = app.id;
  const definition = Object.assign({}, app);
  for (const key of READ_ONLY) delete definition[key];
  $("app-dialog-title").textContent = `Edit ${app.id}`;
  $("app-submit").textContent = "Save";
  $("f-id").readOnly = true;
  appToForm(definition);
  $("f-json").value = JSON.stringify(definition, null, 2);
  $("app-error").textContent = "";
  setMode("json");
  $("app-dialog").showModal();
  $("f-json").focus();
}

async function submitApp(event) {
  event.preventDefault();
  let definition;
  if (mode() === "json") {
    try {
      definition = JSON.parse($("f-json").value);
    } catch (e) {
      $("app-error").textContent = `The JSON does not parse: ${e.message}`;
      return;
    }
  } else {
    let base = {};
    try {
      base = JSON.parse($("f-json").value || "{}");
    } catch (e) {
      base = {};
    }
    definition = Object.assign(base, formToApp());
  }
  try {
    if (state.editing) {
      delete definition.id;
      await api("PUT", appPath(state.editing), definition);
    } else {
      if (definition.id && !definition.id.startsWith("/")) definition.id = "/" + definition.id;
      await api("POST", "/v2/apps", definition);
      state.selected = definition.id;
    }
    $("app-dialog").close();
  } catch (e) {
    $("app-error").textContent = e.message;
  }
  refresh();
}

// ---- Wiring ----------------------------------------------------------------------------------

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const choose = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    tab.focus();
    history.replaceState(null, "", "#" + tab.id.replace(/^tab-/, ""));
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => choose(tab));
    tab.addEventListener("keydown", (event) => {
      let next = null;
      if (event.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
      if (event.key === "ArrowLeft") next = tabs[(i + tabs.length - 1) % tabs.length];
      if (event.key === "Home") next = tabs[0];
      if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        choose(next);
      }
    });
  });
  const wanted = $("tab-" + location.hash.slice(1));
  if (wanted) choose(wanted);
}

function init() {
  setupTabs();
  $("create-app").addEventListener("click", openCreate);
  $("app-form").addEventListener("submit", submitApp);
  $("app-cancel").addEventListener("click", () => $("app-dialog").close());
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", switchMode);
  }
  $("scale-form").addEventListener("submit", submitScale);
  $("scale-cancel").addEventListener("click", () => $("scale-dialog").close());
  wireConfirmDialog();
  $("filter").addEventListener("input", (event) => {
    state.filter = event.target.value.trim();
    render();
  });
  loadInfo();
  refresh();
  connectEvents();
  setInterval(refresh, POLL_MS);
  setInterval(loadInfo, 6 * POLL_MS);
}

init();
