// The shared pieces of the browser tests (tests/ui/README.md): Debian's chromium driven by
// playwright-core (never a downloaded browser), a real `tessera local` on free ports, pages that
// record every console error, screenshots as artifacts, and waiting on conditions with deadlines.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const uiDir = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = path.resolve(uiDir, '..', '..');

/// The browser: $TESSERA_CHROMIUM, else Debian's /usr/bin/chromium.
export const chromiumPath = process.env.TESSERA_CHROMIUM || '/usr/bin/chromium';

/// Flags that keep chromium off the network (this machine's is closed) and quiet.
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/// The tessera binary under test: $TESSERA_BINARY (ctest sets it), else build/bin/tessera.
export function tesseraBinary() {
  return process.env.TESSERA_BINARY || path.join(sourceDir, 'build', 'bin', 'tessera');
}

/// Where screenshots and logs go: $TESSERA_UI_ARTIFACTS, else build/ui-artifacts.
export function artifactsDir(spec) {
  const root = process.env.TESSERA_UI_ARTIFACTS || path.join(sourceDir, 'build', 'ui-artifacts');
  const dir = path.join(root, spec);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/// Resolves once `check()` returns a truthy value (which it returns), polling every `interval`
/// ms; rejects with `what` and the last error after `timeout` ms.
export async function waitFor(what, check, { timeout = 30000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
                      (last ? `: ${last.message}` : ''));
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/// A TCP port free on 127.0.0.1 now (the system tests pick theirs the same way).
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/// Starts `tessera local` on free ports with a fresh work dir; `extraArgs` are added. Resolves
/// once the master, Marathon and Chronos answer. Returns { master, marathon, chronos } (base
/// URLs), `workDir`, `log()` (its output so far) and `stop()`.
export async function startLocal(extraArgs = [], { artifacts } = {}) {
  const [port, marathonPort, chronosPort] = [await freePort(), await freePort(), await freePort()];
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-ui-'));
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-ui-config-'));
  const args = ['local', '--ip=127.0.0.1', `--port=${port}`, `--marathon_port=${marathonPort}`,
                `--chronos_port=${chronosPort}`, `--work_dir=${workDir}`, ...extraArgs];
  const child = spawn(tesseraBinary(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TESSERA_CONFIG_DIR: configDir },
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const local = {
    master: `http://127.0.0.1:${port}`,
    marathon: `http://127.0.0.1:${marathonPort}`,
    chronos: `http://127.0.0.1:${chronosPort}`,
    workDir,
    log: () => output,
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        await waitFor('tessera local to exit', () => exited !== null, { timeout: 30000 })
          .catch(() => child.kill('SIGKILL'));
      }
      if (artifacts) fs.writeFileSync(path.join(artifacts, 'tessera-local.log'), output);
      fs.rmSync(workDir, { recursive: true, force: true });
      fs.rmSync(configDir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('tessera local to serve', async () => {
      if (exited !== null) throw new Error(`tessera local exited (${JSON.stringify(exited)})`);
      const answers = await Promise.all([
        fetch(`${local.master}/health`), fetch(`${local.marathon}/ping`),
        fetch(`${local.chronos}/scheduler/jobs`),
      ]);
      return answers.every((r) => r.ok);
    }, { timeout: 60000, interval: 200 });
  } catch (error) {
    await local.stop();
    throw new Error(`${error.message}\n${output}`);
  }
  return local;
}

/// Launches headless chromium with a fresh profile. Returns { browser, close() }.
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-ui-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    viewport: { width: 1366, height: 768 },
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/// Opens a page that records console errors, uncaught exceptions and failed requests in
/// `page.problems` (assertNoConsoleErrors reads them).
export async function openPage(browser) {
  const page = await browser.context.newPage();
  page.problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') page.problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => page.problems.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A poll cut short by navigation is not the page's fault.
    const failure = request.failure()?.errorText || '';
    if (failure.includes('ERR_ABORTED')) return;
    page.problems.push(`request failed: ${request.url()} ${failure}`);
  });
  return page;
}

/// Throws when `page` logged a console error, threw, or had a request fail.
export function assertNoConsoleErrors(page, where = page.url()) {
  if (page.problems.length > 0) {
    throw new Error(`${where}: ${page.problems.length} problem(s):\n  ${page.problems.join('\n  ')}`);
  }
}

/// Writes `<artifacts>/<name>.png`.
export async function screenshot(page, artifacts, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

/// Throws `message` unless `condition`.
export function check(condition, message) {
  if (!condition) throw new Error(message);
}
