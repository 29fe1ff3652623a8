// The master's web UI: plain JavaScript, no build step, no external assets. It reads only the
// public endpoints (/state-summary, /state, /metrics/snapshot, and the agents' /state and
// /files/*), polling them while the page is visible. The first screen (header and overview)
// comes from /state-summary and /metrics/snapshot, which stay small whatever the number of
// tasks; the heavy /state (every task) is fetched only for the views that list tasks, agents'
// task counts or frameworks. Long tables render one page of rows at a time, so the cost of a
// refresh is the JSON parse plus a few dozen rows, whatever the cluster's size.
'use strict';

(() => {
  const kPollMs = 2000;
  const kPageSize = 50;
  const kHistory = 60;  // points of the CPU chart
  const kTailBytes = 64 * 1024;
  const kTaskStates = ['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING',
    'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_LOST', 'TASK_ERROR',
    'TASK_UNREACHABLE', 'TASK_DROPPED', 'TASK_GONE'];

  const $ = (id) => document.getElementById(id);
  const views = ['overview', 'agents', 'frameworks', 'tasks', 'sandbox', 'metrics'];

  // The views drawn from the full /state; the others need only /state-summary.
  const fullStateViews = new Set(['agents', 'frameworks', 'tasks', 'sandbox']);

  const model = {
    summary: null,  // the last /state-summary or /state: the master's fields, agents, frameworks
    state: null,  // the last full /state, fetched only for fullStateViews
    stateAt: 0,  // when it arrived (Date.now())
    agentsById: new Map(),
    frameworksById: new Map(),
    tasks: [],
    history: [],
    metrics: null,
    view: 'overview',
  };

  // --- helpers ------------------------------------------------------------------------------

  const escapeMap = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  function esc(value) {
    return String(value ?? '').replace(/[&<>"']/g, (c) => escapeMap[c]);
  }

  function number(value, digits = 1) {
    if (value === undefined || value === null || Number.isNaN(value)) return '–';
    return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  }

  function bytes(mb) {
    if (!mb) return '0 B';
    const units = ['MB', 'GB', 'TB'];
    let value = mb;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${number(value)} ${units[unit]}`;
  }

  function fileSize(size) {
    if (size < 1024) return `${size} B`;
    return bytes(size / (1024 * 1024));
  }

  function when(seconds) {
    if (!seconds) return '';
    return new Date(seconds * 1000).toLocaleString();
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).message || message; } catch { /* not JSON */ }
      throw new Error(`${url}: ${message}`);
    }
    return response.json();
  }

  function showError(message) {
    const box = $('error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  // "slave(1)@127.0.0.1:5050" -> the agent's URL prefix: same origin when it shares the
  // master's HTTP server (as `tessera local`'s agents do), else the agent's own address.
  function agentBase(agent) {
    const match = /^([^@]+)@(.+)$/.exec(agent?.pid || '');
    if (!match) return null;
    const [, name, address] = match;
    const master = (model.summary?.pid || '').replace(/^[^@]*@/, '');
    if (address === master || address === window.location.host || address.endsWith(':0')) {
      return `/${name}`;
    }
    return `${window.location.protocol}//${address}/${name}`;
  }

  // --- a paginated, filterable, sortable table ----------------------------------------------

  // columns: [{ key, title, value(row) for sorting/filtering, cell(row) -> HTML, num }]
  class Table {
    constructor(container, { label, columns, rowKey, filterHint, empty }) {
      this.columns = columns;
      this.rowKey = rowKey;
      this.rows = [];
      this.filtered = [];
      this.page = 0;
      this.sort = null;
      this.filter = '';
      this.extraFilter = null;
      this.empty = empty || 'Nothing to show.';
      const id = container.id;
      container.innerHTML = `
        <div class="table-tools">
          <label>Filter <input type="search" id="${id}-filter" placeholder="${esc(filterHint || '')}"></label>
          <div class="pager">
            <span id="${id}-range" aria-live="polite"></span>
            <button type="button" id="${id}-prev" aria-label="Previous page">‹ Prev</button>
            <button type="button" id="${id}-next" aria-label="Next page">Next ›</button>
          </div>
        </div>
        <table aria-label="${esc(label)}">
          <thead><tr>${columns.map((c, i) => `<th scope="col" class="${c.num ? 'num' : ''}"
            aria-sort="none">${c.value ? `<button type="button" data-col="${i}">${esc(c.title)}</button>`
                                         : esc(c.title)}</th>`).join('')}</tr></thead>
          <tbody id="${id}-body"></tbody>
        </table>
        <p class="empty" id="${id}-empty" hidden></p>`;
      this.body = $(`${id}-body`);
      this.emptyBox = $(`${id}-empty`);
      this.range = $(`${id}-range`);
      this.prev = $(`${id}-prev`);
      this.next = $(`${id}-next`);
      this.head = container.querySelector('thead');
      $(`${id}-filter`).addEventListener('input', (event) => {
        this.filter = event.target.value.trim().toLowerCase();
        this.page = 0;
        this.refilter();
      });
      this.prev.addEventListener('click', () => { this.page -= 1; this.draw(); });
      this.next.addEventListener('click', () => { this.page += 1; this.draw(); });
      this.head.addEventListener('click', (event) => {
        const button = event.target.closest('button[data-col]');
        if (!button) return;
        const col = Number(button.dataset.col);
        const descending = this.sort && this.sort.col === col && !this.sort.descending;
        this.sort = { col, descending };
        this.head.querySelectorAll('th').forEach((th, i) => {
          th.setAttribute('aria-sort', i !== col ? 'none' : descending ? 'descending' : 'ascending');
        });
        this.refilter();
      });
    }

    setRows(rows) {
      this.loaded = true;
      this.rows = rows;
      this.refilter();
    }

    // Before the first rows arrive: no rows and no pager, and say so.
    showLoading() {
      if (this.loaded) return;
      this.body.innerHTML = '';
      this.emptyBox.hidden = false;
      this.emptyBox.textContent = 'Loading…';
      this.range.textContent = '';
      this.prev.disabled = true;
      this.next.disabled = true;
    }

    setExtraFilter(fn) {
      this.extraFilter = fn;
      this.page = 0;
      this.refilter();
    }

    refilter() {
      let rows = this.rows;
      if (this.extraFilter) rows = rows.filter(this.extraFilter);
      if (this.filter) {
        const needle = this.filter;
        const keys = this.columns.filter((c) => c.value);
        rows = rows.filter((row) => keys.some((c) => String(c.value(row) ?? '').toLowerCase()
          .includes(needle)));
      }
      if (this.sort) {
        const { col, descending } = this.sort;
        const value = this.columns[col].value;
        const sign = descending ? -1 : 1;
        rows = rows.slice().sort((a, b) => {
          const x = value(a);
          const y = value(b);
          if (typeof x === 'number' && typeof y === 'number') return sign * (x - y);
          return sign * String(x ?? '').localeCompare(String(y ?? ''));
        });
      }
      this.filtered = rows;
      this.draw();
    }

    draw() {
      const pages = Math.max(1, Math.ceil(this.filtered.length / kPageSize));
      this.page = Math.min(Math.max(0, this.page), pages - 1);
      const start = this.page * kPageSize;
      const visible = this.filtered.slice(start, start + kPageSize);
      // A refresh must not take the keyboard focus away from a button in the table.
      const focused = this.body.contains(document.activeElement) ? document.activeElement : null;
      const focusRow = focused?.closest('tr')?.dataset.key;
      const focusCol = focused?.closest('td')?.cellIndex;
      this.body.innerHTML = visible.map((row) => `<tr data-key="${esc(this.rowKey(row))}">${
        this.columns.map((c) => `<td class="${c.num ? 'num' : ''}${c.wrap ? ' wrap' : ''}">${
          c.cell ? c.cell(row) : esc(c.value(row))}</td>`).join('')}</tr>`).join('');
      if (focusRow !== undefined) {
        const row = [...this.body.rows].find((r) => r.dataset.key === focusRow);
        row?.cells[focusCol]?.querySelector('button, a')?.focus();
      }
      this.emptyBox.hidden = this.filtered.length > 0;
      this.emptyBox.textContent = this.rows.length > 0 ? 'No row matches the filter.' : this.empty;
      this.range.textContent = this.filtered.length === 0 ? '0 rows'
        : `${start + 1}–${start + visible.length} of ${this.filtered.length}`;
      this.prev.disabled = this.page === 0;
      this.next.disabled = this.page >= pages - 1;
    }
  }

  // --- the views ----------------------------------------------------------------------------

  const stateCell = (state) => `<span class="state ${esc(state)}">${esc(state)}</span>`;

  const agentsTable = new Table($('agents-table'), {
    label: 'Agents',
    rowKey: (a) => a.id,
    filterHint: 'id, hostname, attribute…',
    empty: 'No agent is registered.',
    columns: [
      { title: 'ID', value: (a) => a.id, cell: (a) => `<code>${esc(a.id)}</code>` },
      { title: 'Host', value: (a) => a.hostname },
      { title: 'CPUs (used / total)', num: true, value: (a) => a.resources?.cpus ?? 0,
        cell: (a) => `${number(a.used_resources?.cpus ?? 0)} / ${number(a.resources?.cpus ?? 0)}` },
      { title: 'Memory (used / total)', num: true, value: (a) => a.resources?.mem ?? 0,
        cell: (a) => `${bytes(a.used_resources?.mem ?? 0)} / ${bytes(a.resources?.mem ?? 0)}` },
      { title: 'Disk', num: true, value: (a) => a.resources?.disk ?? 0,
        cell: (a) => bytes(a.resources?.disk ?? 0) },
      { title: 'Attributes', wrap: true, value: (a) => attributesText(a.attributes) },
      { title: 'Tasks', num: true, value: (a) => a.taskCount,
        cell: (a) => `<button type="button" class="link-button" data-agent-tasks="${esc(a.id)}"
          aria-label="Tasks on ${esc(a.hostname)}">${a.taskCount}</button>` },
      { title: 'State', value: (a) => (a.active === false ? 'inactive' : 'active'),
        cell: (a) => stateCell(a.active === false ? 'inactive' : 'active') },
      { title: 'Registered', value: (a) => a.registered_time || 0,
        cell: (a) => esc(when(a.registered_time)) },
    ],
  });

  function attributesText(attributes) {
    if (!attributes) return '';
    return Object.entries(attributes).map(([k, v]) => `${k}:${typeof v === 'object'
      ? JSON.stringify(v) : v}`).join('; ');
  }

  const frameworksTable = new Table($('frameworks-table'), {
    label: 'Frameworks',
    rowKey: (f) => f.id,
    filterHint: 'id, name, user, role…',
    empty: 'No framework is registered.',
    columns: [
      { title: 'ID', value: (f) => f.id, cell: (f) => `<code>${esc(f.id)}</code>` },
      { title: 'Name', value: (f) => f.name,
        cell: (f) => (/^https?:\/\//.test(f.webui_url || '')
          ? `<a href="${esc(f.webui_url)}">${esc(f.name)}</a>` : esc(f.name)) },
      { title: 'User', value: (f) => f.user },
      { title: 'Role', value: (f) => f.role ?? (f.roles || []).join(',') },
      { title: 'Active', value: (f) => (f.active ? 'active' : 'inactive'),
        cell: (f) => stateCell(f.active ? 'active' : 'inactive') },
      { title: 'Tasks', num: true, value: (f) => (f.tasks || []).length },
      { title: 'CPUs', num: true, value: (f) => f.used_resources?.cpus ?? f.resources?.cpus ?? 0,
        cell: (f) => number(f.used_resources?.cpus ?? f.resources?.cpus ?? 0) },
      { title: 'Memory', num: true, value: (f) => f.used_resources?.mem ?? f.resources?.mem ?? 0,
        cell: (f) => bytes(f.used_resources?.mem ?? f.resources?.mem ?? 0) },
      { title: 'Registered', value: (f) => f.registered_time || 0,
        cell: (f) => esc(when(f.registered_time)) },
    ],
  });

  const tasksTable = new Table($('tasks-table'), {
    label: 'Tasks',
    rowKey: (t) => `${t.framework_id}/${t.id}`,
    filterHint: 'id, name, agent, framework…',
    empty: 'No task.',
    columns: [
      { title: 'ID', value: (t) => t.id, cell: (t) => `<code>${esc(t.id)}</code>` },
      { title: 'Name', value: (t) => t.name },
      { title: 'State', value: (t) => t.state, cell: (t) => stateCell(t.state) },
      { title: 'Framework', value: (t) => model.frameworksById.get(t.framework_id)?.name || t.framework_id },
      { title: 'Agent', value: (t) => `${model.agentsById.get(t.slave_id)?.hostname || ''} ${t.slave_id}`,
        cell: (t) => `<span title="${esc(t.slave_id)}">${esc(model.agentsById.get(t.slave_id)?.hostname || t.slave_id)}</span>` },
      { title: 'CPUs', num: true, value: (t) => t.resources?.cpus ?? 0, cell: (t) => number(t.resources?.cpus ?? 0) },
      { title: 'Memory', num: true, value: (t) => t.resources?.mem ?? 0, cell: (t) => bytes(t.resources?.mem ?? 0) },
      { title: 'Updated', value: (t) => lastUpdate(t), cell: (t) => esc(when(lastUpdate(t))) },
      { title: 'Sandbox', cell: (t) => `<button type="button" class="link-button" data-sandbox="${esc(t.framework_id)}/${esc(t.id)}"
          aria-label="Sandbox of ${esc(t.id)}">Sandbox</button>` },
    ],
  });

  function lastUpdate(task) {
    const statuses = task.statuses || [];
    return statuses.length ? statuses[statuses.length - 1].timestamp : 0;
  }

  const metricsTable = new Table($('metrics-table'), {
    label: 'Metrics',
    rowKey: (m) => m.name,
    filterHint: 'master/tasks_running…',
    empty: 'No metrics yet.',
    columns: [
      { title: 'Metric', value: (m) => m.name, cell: (m) => `<code>${esc(m.name)}</code>` },
      { title: 'Value', num: true, value: (m) => m.value, cell: (m) => esc(number(m.value, 3)) },
    ],
  });

  // The state filter of the Tasks view: a checkbox per state, plus "agent:<id>" from Agents.
  const checkedStates = new Set(kTaskStates);
  let agentFilter = null;
  function buildStateFilter() {
    const box = $('task-states');
    for (const state of kTaskStates) {
      const label = document.createElement('label');
      label.innerHTML = `<input type="checkbox" value="${state}" checked> ${state.replace('TASK_', '')
        .toLowerCase()} <span class="count" data-count="${state}"></span>`;
      box.appendChild(label);
    }
    box.addEventListener('change', (event) => {
      if (event.target.checked) checkedStates.add(event.target.value);
      else checkedStates.delete(event.target.value);
      applyTaskFilter();
    });
  }
  function applyTaskFilter() {
    $('agent-filter').hidden = !agentFilter;
    $('agent-filter-name').textContent = agentFilter || '';
    tasksTable.setExtraFilter((t) => checkedStates.has(t.state) &&
      (!agentFilter || t.slave_id === agentFilter));
  }

  // --- overview: resource bars and the CPU history (inline SVG) -----------------------------

  function totals(agents) {
    const sum = { cpus: [0, 0], mem: [0, 0], disk: [0, 0], gpus: [0, 0] };
    for (const agent of agents) {
      for (const key of Object.keys(sum)) {
        sum[key][0] += agent.used_resources?.[key] ?? 0;
        sum[key][1] += agent.resources?.[key] ?? 0;
      }
    }
    return sum;
  }

  function bar(label, used, total, format) {
    const share = total > 0 ? Math.min(1, used / total) : 0;
    const pct = Math.round(share * 100);
    return `<div class="bar-label"><span>${esc(label)}</span><span>${esc(format(used))} /
      ${esc(format(total))} (${pct}%)</span></div>
      <svg class="bar" width="100%" height="12" role="img" aria-label="${esc(label)}: ${pct}% used">
        <rect class="total" x="0" y="0" width="100%" height="12" rx="3"></rect>
        <rect class="used" x="0" y="0" width="${pct}%" height="12" rx="3"></rect>
      </svg>`;
  }

  function historyChart(points) {
    const width = 300;
    const height = 90;
    if (points.length < 2) return '<p class="where">Collecting…</p>';
    const max = Math.max(1, ...points.map((p) => p.total));
    const step = width / (kHistory - 1);
    const offset = (kHistory - points.length) * step;
    const line = points.map((p, i) => `${(offset + i * step).toFixed(1)},${
      (height - (p.used / max) * height).toFixed(1)}`).join(' ');
    const last = points[points.length - 1];
    return `<svg class="history" viewBox="0 0 ${width} ${height + 14}" width="100%" role="img"
        aria-label="CPUs allocated over the last ${points.length} updates, now ${number(last.used)} of ${number(last.total)}">
      <line x1="0" y1="${height}" x2="${width}" y2="${height}"></line>
      <line x1="0" y1="0" x2="${width}" y2="0"></line>
      <polyline points="${line}"></polyline>
      <text x="0" y="${height + 12}">${number(max)} cpus max</text>
    </svg>`;
  }

  function drawOverview() {
    const state = model.summary;
    const sum = totals(state.slaves || []);
    $('resource-bars').innerHTML = [
      bar('CPUs', sum.cpus[0], sum.cpus[1], (v) => number(v)),
      bar('Memory', sum.mem[0], sum.mem[1], bytes),
      bar('Disk', sum.disk[0], sum.disk[1], bytes),
      sum.gpus[1] > 0 ? bar('GPUs', sum.gpus[0], sum.gpus[1], (v) => number(v)) : '',
    ].join('');
    $('cpu-history').innerHTML = historyChart(model.history);
    const agents = state.slaves || [];
    const counts = [
      ['Agents (active)', `${agents.filter((a) => a.active !== false).length} / ${agents.length}`],
      ['Frameworks', (state.frameworks || []).length],
      // Not in /state-summary: known once a view has fetched the full /state.
      ['Completed frameworks', model.state ? (model.state.completed_frameworks || []).length : '–'],
      ['Started', when(state.start_time)],
      ['Elected', when(state.elected_time)],
    ];
    $('counts').innerHTML = counts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
    const byState = taskCountsByState();
    $('task-counts').innerHTML = kTaskStates.filter((s) => byState.has(s))
      .map((s) => `<dt>${esc(s.replace('TASK_', '').toLowerCase())}</dt><dd>${byState.get(s)}</dd>`)
      .join('') || '<dt>none</dt><dd>0</dd>';
  }

  // Tasks per state, as the Mesos UI's overview counts them: from the master's
  // master/tasks_<state> gauges, else (no metrics) from the tasks of the last full /state.
  function taskCountsByState() {
    const byState = new Map();
    const metrics = model.metrics;
    if (metrics && kTaskStates.some((s) => `master/${s.replace('TASK_', 'tasks_').toLowerCase()}` in metrics)) {
      for (const state of kTaskStates) {
        const count = metrics[`master/${state.replace('TASK_', 'tasks_').toLowerCase()}`];
        if (count > 0) byState.set(state, count);
      }
      return byState;
    }
    for (const task of model.tasks) byState.set(task.state, (byState.get(task.state) || 0) + 1);
    return byState;
  }

  // --- polling ------------------------------------------------------------------------------

  // The header and the CPU history: from /state-summary or /state alike (the same fields).
  function ingestSummary(summary) {
    model.summary = summary;
    const sum = totals(summary.slaves || []);
    model.history.push({ used: sum.cpus[0], total: sum.cpus[1] });
    if (model.history.length > kHistory) model.history.shift();
    $('cluster').textContent = summary.cluster || '(unnamed)';
    const leader = summary.leader_info
      ? `${summary.leader_info.hostname}:${summary.leader_info.port}` : (summary.leader || '').replace(/^[^@]*@/, '');
    $('leader').textContent = leader || 'none';
    $('version').textContent = summary.version || '';
    $('updated').textContent = new Date().toLocaleTimeString();
  }

  function ingest(state) {
    model.state = state;
    model.stateAt = Date.now();
    model.agentsById = new Map((state.slaves || []).map((a) => [a.id, a]));
    const frameworks = [...(state.frameworks || []), ...(state.completed_frameworks || [])];
    model.frameworksById = new Map(frameworks.map((f) => [f.id, f]));
    const tasks = [];
    const perAgent = new Map();
    for (const framework of frameworks) {
      for (const list of [framework.tasks, framework.unreachable_tasks, framework.completed_tasks]) {
        for (const task of list || []) {
          tasks.push(task);
          if (list === framework.tasks) perAgent.set(task.slave_id, (perAgent.get(task.slave_id) || 0) + 1);
        }
      }
    }
    for (const agent of state.slaves || []) agent.taskCount = perAgent.get(agent.id) || 0;
    model.tasks = tasks;
    const counts = new Map();
    for (const task of tasks) counts.set(task.state, (counts.get(task.state) || 0) + 1);
    document.querySelectorAll('[data-count]').forEach((span) => {
      span.textContent = `(${counts.get(span.dataset.count) || 0})`;
    });
  }

  // A master that does not lead sends the browser to the one that does, as Mesos's UI does.
  function redirectToLeader(state) {
    if (!state.leader || !state.pid || state.leader === state.pid) return false;
    const info = state.leader_info;
    const address = info ? `${info.hostname}:${info.port}` : state.leader.replace(/^[^@]*@/, '');
    if (!address || address === window.location.host) return false;
    window.location.replace(`${window.location.protocol}//${address}/${window.location.hash}`);
    return true;
  }

  let polling = null;
  let inFlight = false;
  let pollAgain = false;  // the view changed during a poll: poll for the new one when it ends
  let started = false;  // the first poll has been sent (select() leaves the fetching to it)
  // One refresh: /state for the views that list tasks, else the small /state-summary, and
  // /metrics/snapshot beside it for the overview (task counts) and the metrics view.
  async function poll() {
    if (inFlight) {
      pollAgain = true;
      return;
    }
    inFlight = true;
    const view = model.view;
    const full = fullStateViews.has(view);
    try {
      const metrics = view === 'metrics' || view === 'overview'
        ? getJson('/metrics/snapshot') : null;
      // A failed metrics fetch must not become an unhandled rejection while /state loads.
      metrics?.catch(() => {});
      const state = await getJson(full ? '/state' : '/state-summary');
      if (redirectToLeader(state)) return;
      performance.mark(full ? 'tessera-state-fetched' : 'tessera-summary-fetched');
      ingestSummary(state);
      if (full) ingest(state);
      if (metrics) {
        try {
          model.metrics = await metrics;
        } catch (error) {
          // The overview draws without them (task counts from the last /state); the metrics
          // view has nothing else to show.
          if (view === 'metrics') throw error;
        }
      }
      showError('');
      render();
    } catch (error) {
      showError(`Cannot reach the master: ${error.message}`);
    } finally {
      inFlight = false;
      if (pollAgain) {
        pollAgain = false;
        poll();
      }
    }
  }

  function schedulePolling() {
    if (polling) clearInterval(polling);
    polling = null;
    if ($('live').checked && !document.hidden) polling = setInterval(poll, kPollMs);
  }

  function render() {
    if (fullStateViews.has(model.view) && !model.state) {
      for (const table of [agentsTable, frameworksTable, tasksTable]) table.showLoading();
      return;
    }
    if (!model.summary) return;
    switch (model.view) {
      case 'overview': drawOverview(); break;
      case 'agents': agentsTable.setRows(model.state.slaves || []); break;
      case 'frameworks': frameworksTable.setRows([...(model.state.frameworks || []),
        ...(model.state.completed_frameworks || [])]); break;
      case 'tasks': tasksTable.setRows(model.tasks); break;
      case 'metrics': metricsTable.setRows(Object.entries(model.metrics || {})
        .map(([name, value]) => ({ name, value }))); break;
      default: break;
    }
  }

  // --- tabs (WAI-ARIA tabs pattern: arrows, Home and End move between them) -----------------

  function select(view, { focus = false, push = true } = {}) {
    if (!views.includes(view)) view = 'overview';
    model.view = view;
    for (const name of views) {
      const tab = $(`tab-${name}`);
      const on = name === view;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      $(name).hidden = !on;
      if (on && focus) tab.focus();
    }
    if (push && !window.location.hash.startsWith(`#${view}`)) {
      history.replaceState(null, '', `#${view}`);
    }
    // A view whose data the page has not fetched yet, or not lately, gets it now, not at the
    // next tick (meanwhile it draws what it has).
    if (started && ((view === 'metrics' && !model.metrics) ||
                    (fullStateViews.has(view) && Date.now() - model.stateAt > kPollMs))) {
      poll();
    }
    render();
  }

  function wireTabs() {
    const tablist = $('tabs');
    tablist.addEventListener('click', (event) => {
      const tab = event.target.closest('[role="tab"]');
      if (tab) select(tab.dataset.view);
    });
    tablist.addEventListener('keydown', (event) => {
      const index = views.indexOf(model.view);
      let next = null;
      if (event.key === 'ArrowRight') next = views[(index + 1) % views.length];
      else if (event.key === 'ArrowLeft') next = views[(index + views.length - 1) % views.length];
      else if (event.key === 'Home') next = views[0];
      else if (event.key === 'End') next = views[views.length - 1];
      if (next) {
        event.preventDefault();
        select(next, { focus: true });
      }
    });
  }

  // --- sandbox: browse an executor's directory and tail a file -----------------------------

  const sandbox = { agent: null, base: null, root: null, path: null, file: null, offset: 0, timer: null };

  async function openSandbox(frameworkId, taskId) {
    const task = model.tasks.find((t) => t.framework_id === frameworkId && t.id === taskId);
    select('sandbox');
    stopTail();
    $('viewer').hidden = true;
    if (!task) return showError(`No task '${taskId}'`);
    const agent = model.agentsById.get(task.slave_id);
    const base = agentBase(agent);
    if (!base) return showError(`Task '${taskId}' has no known agent`);
    try {
      const agentState = await getJson(`${base}/state`);
      const directory = findDirectory(agentState, frameworkId, task);
      if (!directory) throw new Error(`the agent knows no sandbox of task '${taskId}'`);
      Object.assign(sandbox, { agent, base, root: directory, file: null });
      $('sandbox-where').textContent = `Task ${taskId} on ${agent.hostname}`;
      showError('');
      await browse(directory);
    } catch (error) {
      showError(`Cannot open the sandbox: ${error.message}`);
    }
  }

  function findDirectory(agentState, frameworkId, task) {
    const executorId = task.executor_id || task.id;
    for (const framework of [...(agentState.frameworks || []), ...(agentState.completed_frameworks || [])]) {
      if (framework.id !== frameworkId) continue;
      for (const executor of [...(framework.executors || []), ...(framework.completed_executors || [])]) {
        const tasks = [...(executor.tasks || []), ...(executor.queued_tasks || []),
          ...(executor.completed_tasks || [])];
        if (executor.id === executorId || tasks.some((t) => t.id === task.id)) return executor.directory;
      }
    }
    return null;
  }

  const sandboxTable = new Table($('sandbox-table'), {
    label: 'Sandbox files',
    rowKey: (f) => f.path,
    filterHint: 'file name…',
    empty: 'Empty directory.',
    columns: [
      { title: 'Name', value: (f) => f.path.split('/').pop(),
        cell: (f) => `<button type="button" class="link-button" data-path="${esc(f.path)}"
          data-dir="${f.mode.startsWith('d') ? 1 : 0}">${esc(f.path.split('/').pop())}${
          f.mode.startsWith('d') ? '/' : ''}</button>` },
      { title: 'Size', num: true, value: (f) => f.size, cell: (f) => esc(fileSize(f.size)) },
      { title: 'Mode', value: (f) => f.mode, cell: (f) => `<code>${esc(f.mode)}</code>` },
      { title: 'Modified', value: (f) => f.mtime, cell: (f) => esc(when(f.mtime)) },
    ],
  });

  async function browse(path) {
    const entries = await getJson(`${sandbox.base}/files/browse?path=${encodeURIComponent(path)}`);
    sandbox.path = path;
    entries.sort((a, b) => (b.mode.startsWith('d') - a.mode.startsWith('d')) || a.path.localeCompare(b.path));
    sandboxTable.setRows(entries);
    drawCrumbs();
  }

  function drawCrumbs() {
    const crumbs = $('sandbox-crumbs');
    const rel = sandbox.path.slice(sandbox.root.length).split('/').filter(Boolean);
    const parts = [{ name: 'sandbox', path: sandbox.root }];
    rel.forEach((name, i) => parts.push({ name, path: `${sandbox.root}/${rel.slice(0, i + 1).join('/')}` }));
    crumbs.innerHTML = parts.map((p) => `<button type="button" data-path="${esc(p.path)}" data-dir="1">${
      esc(p.name)}</button>`).join('<span aria-hidden="true">/</span>');
  }

  async function openFile(path) {
    stopTail();
    sandbox.file = path;
    $('viewer').hidden = false;
    $('viewer-title').textContent = path.split('/').pop();
    $('viewer-download').href = `${sandbox.base}/files/download?path=${encodeURIComponent(path)}`;
    $('viewer-text').textContent = '';
    // Where the file ends now; the last kTailBytes of it are read first.
    const end = await getJson(`${sandbox.base}/files/read?path=${encodeURIComponent(path)}&offset=-1`);
    sandbox.offset = Math.max(0, (end.offset || 0) - kTailBytes);
    await readMore();
    if ($('viewer-follow').checked) sandbox.timer = setInterval(readMore, 1000);
  }

  async function readMore() {
    if (!sandbox.file) return;
    const path = sandbox.file;
    try {
      for (let i = 0; i < 16; ++i) {
        const chunk = await getJson(`${sandbox.base}/files/read?path=${encodeURIComponent(path)}` +
          `&offset=${sandbox.offset}&length=${kTailBytes}`);
        if (path !== sandbox.file || !chunk.data) break;
        const view = $('viewer-text');
        const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
        view.textContent += chunk.data;
        if (view.textContent.length > 4 * kTailBytes) view.textContent = view.textContent.slice(-2 * kTailBytes);
        if (atBottom) view.scrollTop = view.scrollHeight;
        sandbox.offset = chunk.offset + chunk.data.length;
      }
    } catch (error) {
      stopTail();
      showError(`Cannot read '${path}': ${error.message}`);
    }
  }

  function stopTail() {
    if (sandbox.timer) clearInterval(sandbox.timer);
    sandbox.timer = null;
  }

  // --- wiring -------------------------------------------------------------------------------

  function wire() {
    wireTabs();
    buildStateFilter();
    document.addEventListener('click', (event) => {
      const target = event.target.closest('button');
      if (!target) return;
      if (target.dataset.sandbox) {
        const [frameworkId, ...rest] = target.dataset.sandbox.split('/');
        openSandbox(frameworkId, rest.join('/'));
      } else if (target.dataset.agentTasks) {
        agentFilter = target.dataset.agentTasks;
        select('tasks');
        applyTaskFilter();
      } else if (target.dataset.path && sandbox.base) {
        const action = target.dataset.dir === '1' ? browse(target.dataset.path) : openFile(target.dataset.path);
        action.catch((error) => showError(error.message));
      }
    });
    $('agent-filter-clear').addEventListener('click', () => {
      agentFilter = null;
      applyTaskFilter();
    });
    $('viewer-follow').addEventListener('change', (event) => {
      stopTail();
      if (event.target.checked && sandbox.file) sandbox.timer = setInterval(readMore, 1000);
    });
    $('live').addEventListener('change', schedulePolling);
    document.addEventListener('visibilitychange', schedulePolling);
    window.addEventListener('hashchange', () => select(window.location.hash.slice(1), { push: false }));
    applyTaskFilter();
  }

  wire();
  select(window.location.hash.slice(1) || 'overview', { push: false });
  started = true;
  poll().then(() => {
    // The first render is the page's "usable" moment (the browser tests and the bench read it).
    performance.mark('tessera-first-render');
    document.body.dataset.ready = 'true';
  });
  schedulePolling();
})();
