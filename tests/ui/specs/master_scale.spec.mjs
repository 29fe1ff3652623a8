// The master page's budget: usable within 1 s on loopback with 1,000 agents and 10,000 tasks.
// The page's files come from a real `tessera local`, through a loopback proxy that answers
// /state, /state-summary and /metrics/snapshot itself with a cluster of that size (made up here,
// in Mesos's shapes), so what is measured is the page's own cost: fetching and parsing the JSON
// over loopback and drawing the views.
//
// Speed is reported, not enforced (bench/RESULTS.md): what is asserted is the shape that makes
// the first screen fast whatever the machine's load — the overview is drawn from /state-summary
// and the metrics without the page ever asking for the ~4 MB /state, and the views that list
// tasks fetch it when opened and draw one page of rows. Each load's timings are printed; with
// $TESSERA_UI_BASELINE_APP_JS (a master app.js, e.g. `git show main:webui/master/app.js`) the
// same loads are made, interleaved, with that page too, for a before/after in one run.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { promisify } from 'node:util';

import { assertNoConsoleErrors, check, freePort, openPage, screenshot, waitFor } from '../harness.mjs';

const kAgents = 1000;
const kTasks = 10000;
const kFrameworks = 20;
const kLoads = Number(process.env.TESSERA_UI_SCALE_LOADS || 3);
function fakeState(port) {
  const states = ['TASK_RUNNING', 'TASK_RUNNING', 'TASK_RUNNING', 'TASK_STAGING', 'TASK_FINISHED',
                  'TASK_FAILED', 'TASK_KILLED'];
  const slaves = [];
  for (let i = 0; i < kAgents; ++i) {
    slaves.push({
      id: `agent-${i}-S0`, pid: `slave(1)@10.0.${i >> 8}.${i & 255}:5051`,
      hostname: `host-${i}.example`, active: i % 50 !== 0, registered_time: 1700000000 + i,
      resources: { cpus: 16, mem: 65536, disk: 500000, ports: '[31000-32000]' },
      used_resources: { cpus: (i % 16), mem: (i % 16) * 2048, disk: 0 },
      attributes: { rack: `r${i % 40}`, zone: `z${i % 3}` },
    });
  }
  const frameworks = [];
  for (let f = 0; f < kFrameworks; ++f) {
    frameworks.push({
      id: `fw-${f}-0000`, name: `framework-${f}`, user: 'root', role: '*', active: true,
      registered_time: 1700000000, resources: { cpus: 0, mem: 0 },
      used_resources: { cpus: 0, mem: 0 }, tasks: [], completed_tasks: [],
    });
  }
  for (let t = 0; t < kTasks; ++t) {
    const framework = frameworks[t % kFrameworks];
    const state = states[t % states.length];
    const task = {
      id: `task-${t}.${t * 7919}`, name: `app-${t % 300}`, framework_id: framework.id,
      executor_id: '', slave_id: slaves[t % kAgents].id, state,
      resources: { cpus: 0.5, mem: 256, disk: 0 },
      statuses: [{ state: 'TASK_STARTING', timestamp: 1700000100 + t },
                 { state, timestamp: 1700000200 + t }],
    };
    (state === 'TASK_RUNNING' || state === 'TASK_STAGING' ? framework.tasks
      : framework.completed_tasks).push(task);
  }
  return {
    version: '0.1.0', cluster: 'scale', hostname: '127.0.0.1',
    pid: `master@127.0.0.1:${port}`, leader: `master@127.0.0.1:${port}`,
    leader_info: { hostname: '127.0.0.1', port: Number(port) },
    start_time: 1700000000, elected_time: 1700000000, activated_slaves: kAgents,
    slaves, frameworks, completed_frameworks: [], unregistered_frameworks: [],
  };
}

// /state-summary of the same cluster: no task lists, each agent's and framework's counts.
function fakeSummary(state) {
  const running = new Map();
  const frameworks = state.frameworks.map((framework) => {
    const { tasks, completed_tasks: completed, ...rest } = framework;
    for (const task of tasks) {
      if (task.state === 'TASK_RUNNING') running.set(task.slave_id, (running.get(task.slave_id) || 0) + 1);
    }
    return {
      ...rest,
      TASK_RUNNING: tasks.filter((t) => t.state === 'TASK_RUNNING').length,
      TASK_STAGING: tasks.filter((t) => t.state === 'TASK_STAGING').length,
    };
  });
  const { completed_frameworks: c, unregistered_frameworks: u, ...master } = state;
  return {
    ...master,
    slaves: state.slaves.map((agent) => ({ ...agent, TASK_RUNNING: running.get(agent.id) || 0 })),
    frameworks,
  };
}

// The master's gauges the overview reads (master/tasks_<state>), and filler.
function fakeMetrics(state) {
  const metrics = {};
  for (let i = 0; i < 400; ++i) metrics[`master/fake_metric_${i}`] = i;
  for (const framework of state.frameworks) {
    for (const task of [...framework.tasks, ...framework.completed_tasks]) {
      const name = `master/${task.state.replace('TASK_', 'tasks_').toLowerCase()}`;
      metrics[name] = (metrics[name] || 0) + 1;
    }
  }
  return metrics;
}

// A proxy to the real master that answers the cluster's JSON itself and, given `appJs`, serves
// that file as the page's script. Counts the requests per path.
async function startProxy(masterPort, bodies, appJs) {
  const port = await freePort();
  const served = new Map();
  const server = http.createServer((request, response) => {
    const path = request.url.split('?')[0];
    served.set(path, (served.get(path) || 0) + 1);
    const fake = path === '/static/app.js' && appJs ? appJs : bodies[path];
    if (fake) {
      response.writeHead(200, {
        'Content-Type': path.endsWith('.js') ? 'text/javascript' : 'application/json',
      });
      response.end(fake);
      return;
    }
    const forward = http.request({
      host: '127.0.0.1', port: masterPort, path: request.url, method: request.method,
      headers: request.headers,
    }, (answer) => {
      response.writeHead(answer.statusCode, answer.headers);
      answer.pipe(response);
    });
    forward.on('error', () => { response.writeHead(502); response.end(); });
    request.pipe(forward);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${port}`, served, close: () => server.close() };
}

// curl's own timing of one GET: seconds to the whole body, and its size. (Asynchronous: the
// proxy answering it runs in this process.)
async function curlTime(url) {
  const { stdout: out } = await promisify(execFile)('curl', ['-s', '-o', '/dev/null', '-w',
    '%{time_total} %{size_download}', url], { encoding: 'utf8' });
  const [seconds, size] = out.trim().split(' ').map(Number);
  return { ms: Math.round(seconds * 1000), bytes: size };
}

const median = (values) => {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export default async function (t) {
  const local = await t.startLocal(['--num_agents=0']);
  const port = new URL(local.master).port;
  const fake = fakeState(port);
  const bodies = {
    '/state': JSON.stringify(fake),
    '/state-summary': JSON.stringify(fakeSummary(fake)),
    '/metrics/snapshot': JSON.stringify(fakeMetrics(fake)),
  };
  const proxies = { current: await startProxy(port, bodies, null) };
  const baselineFile = process.env.TESSERA_UI_BASELINE_APP_JS;
  if (baselineFile) proxies.baseline = await startProxy(port, bodies, fs.readFileSync(baselineFile));
  try {
    await firstScreen(t, proxies.current);
    await tableViews(t, proxies.current);
    await report(t, proxies);
  } finally {
    for (const proxy of Object.values(proxies)) proxy.close();
  }
}

// One fresh load of the page: its Performance API timings (ms from navigation start).
async function load(browser, base) {
  const page = await openPage(browser);
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="true"]');
  const timings = await page.evaluate(() => {
    const mark = (name) => performance.getEntriesByName(name)[0]?.startTime;
    const resource = (path) => performance.getEntriesByType('resource')
      .find((e) => new URL(e.name).pathname === path);
    const data = resource('/state-summary') || resource('/state');
    return {
      usable: mark('tessera-first-render'),
      domContentLoaded: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
      fetch: data.responseEnd - data.requestStart,
      parsed: mark('tessera-summary-fetched') ?? mark('tessera-state-fetched'),
      arrived: data.responseEnd,
      bytes: data.encodedBodySize,
      stateRequested: resource('/state') !== undefined,
    };
  });
  // The page's own work once the JSON arrived: parse, ingest, draw.
  timings.parse = timings.parsed - timings.arrived;
  timings.draw = timings.usable - timings.parsed;
  return { page, timings };
}

async function firstScreen(t, proxy) {
  await t.step('the first screen is drawn from /state-summary, without waiting for /state',
    async () => {
      const { page, timings } = await load(t.browser, proxy.base);
      console.log(`first load (ms): ${JSON.stringify(timings)}`);
      check(!timings.stateRequested, 'the page asked for /state before its first screen');
      check(!proxy.served.has('/state'), 'the proxy served /state to the overview');
      check(proxy.served.get('/state-summary') >= 1, 'the page never asked for /state-summary');
      // The overview is complete: every agent counted, the task counts from the gauges.
      const counts = await page.textContent('#counts');
      check(counts.includes(`/ ${kAgents}`), `the overview's agent count: '${counts}'`);
      const running = await page.textContent('#task-counts');
      check(/running\s*\d{3,}/.test(running), `the overview's task counts: '${running}'`);
      check(/CPUs/.test(await page.textContent('#resource-bars')), 'no resource bars');
      await screenshot(page, t.artifacts, 'scale-overview');
      assertNoConsoleErrors(page);
      await page.close();
    });
}

async function tableViews(t, proxy) {
  await t.step('tasks, agents and a filter draw one page of rows; /state comes with Tasks',
    async () => {
      const { page } = await load(t.browser, proxy.base);
      const before = proxy.served.get('/state') || 0;
      const start = Date.now();
      await page.click('#tab-tasks');
      await waitFor('a page of tasks', async () =>
        (await page.locator('#tasks-table-body tr').count()) === 50);
      const tasksTab = Date.now() - start;
      // (Later polls of the open Tasks view fetch it again: at least one.)
      check((proxy.served.get('/state') || 0) > before, 'the Tasks view did not fetch /state');
      check(await page.textContent('#tasks-table-range') === `1–50 of ${kTasks}`,
            'tasks are not paginated');
      const filter = await page.evaluate(() => {
        const input = document.getElementById('tasks-table-filter');
        const begin = performance.now();
        input.value = 'app-42';
        input.dispatchEvent(new Event('input'));
        return performance.now() - begin;
      });
      const range = await page.textContent('#tasks-table-range');
      check(/of \d+$/.test(range) && !range.endsWith(`of ${kTasks}`), `filter range '${range}'`);
      // The agents view draws from the /state the Tasks view fetched, at once.
      const agentsTab = await page.evaluate(() => {
        const begin = performance.now();
        document.getElementById('tab-agents').click();
        return performance.now() - begin;
      });
      check(await page.textContent('#agents-table-range') === `1–50 of ${kAgents}`,
            'agents are not paginated');
      console.log(`views (ms): ${JSON.stringify({ tasksTab, filter: Math.round(filter),
        agentsTab: Math.round(agentsTab) })}`);
      await screenshot(page, t.artifacts, 'scale-agents');
      assertNoConsoleErrors(page);
      await page.close();
    });
}

// kLoads fresh loads of each page, interleaved, and curl's time for the JSON: printed, with
// medians (bench/RESULTS.md has them; nothing here is a wall-clock threshold).
async function report(t, proxies) {
  await t.step(`${kLoads} loads measured`, async () => {
    const runs = Object.fromEntries(Object.keys(proxies).map((name) => [name, []]));
    for (let i = 0; i < kLoads; ++i) {
      for (const [name, proxy] of Object.entries(proxies)) {
        const { page, timings } = await load(t.browser, proxy.base);
        assertNoConsoleErrors(page);
        await page.close();
        runs[name].push(timings);
      }
    }
    const base = proxies.current.base;
    const curl = {};
    for (const path of ['/state', '/state-summary', '/metrics/snapshot']) {
      const samples = [];
      for (let i = 0; i < 3; ++i) samples.push(await curlTime(`${base}${path}`));
      curl[path] = { ms: median(samples.map((s) => s.ms)), bytes: samples[0].bytes };
    }
    const summary = {};
    for (const [name, loads] of Object.entries(runs)) {
      summary[name] = Object.fromEntries(['usable', 'domContentLoaded', 'fetch', 'parse', 'draw',
        'bytes'].map((key) => [key, Math.round(median(loads.map((l) => l[key])))]));
      console.log(`${name} loads (ms): ${JSON.stringify(loads.map((l) => Math.round(l.usable)))}`);
    }
    console.log(`medians of ${kLoads} loads (ms, bytes): ${JSON.stringify(summary)}`);
    console.log(`curl, median of 3 (ms, bytes): ${JSON.stringify(curl)}`);
    console.log(`load average: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  });
}
