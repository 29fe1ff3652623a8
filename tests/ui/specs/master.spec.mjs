// The master's web UI on a real `tessera local`: a task run with `tessera execute` reaches
// RUNNING in the Tasks view, its stdout opens from the sandbox view, the tabs work from the
// keyboard, and no page logs a console error.
import { spawn } from 'node:child_process';

import {
  assertNoConsoleErrors, check, openPage, screenshot, tesseraBinary, waitFor,
} from '../harness.mjs';

export default async function (t) {
  const local = await t.startLocal(['--cluster=ui-test-cluster']);
  const page = await openPage(t.browser);
  let execute = null;

  try {
    await t.step('the master serves its page at / with the cluster and the leader', async () => {
      const response = await page.goto(`${local.master}/`);
      check(response.ok(), `GET / answered ${response.status()}`);
      check((response.headers()['content-type'] || '').startsWith('text/html'),
            `GET / is ${response.headers()['content-type']}`);
      await page.waitForSelector('body[data-ready="true"]');
      await waitFor('the cluster name', async () =>
        (await page.textContent('#cluster')) === 'ui-test-cluster');
      const leader = await page.textContent('#leader');
      const info = (await (await fetch(`${local.master}/state`)).json()).leader_info;
      check(leader === `${info.hostname}:${info.port}`, `leader shows '${leader}'`);
      await waitFor('the resource bars', async () =>
        (await page.locator('#resource-bars svg').count()) >= 3);
      await screenshot(page, t.artifacts, 'overview');
      assertNoConsoleErrors(page);
    });

    await t.step('paths out of the web UI are refused', async () => {
      for (const path of ['/static/../../../etc/passwd', '/static/%2e%2e/%2e%2e/etc/passwd',
                          '/static/..%2f..%2fetc/passwd']) {
        const response = await fetch(`${local.master}${path}`);
        const body = await response.text();
        check(response.status === 404 || response.status === 400,
              `${path} answered ${response.status}`);
        check(!body.includes('root:'), `${path} leaked a file`);
      }
    });

    await t.step('the tabs work from the keyboard', async () => {
      await page.focus('#tab-overview');
      await page.keyboard.press('ArrowRight');
      check(await page.isVisible('#agents'), 'ArrowRight did not show Agents');
      check(await page.evaluate(() => document.activeElement.id) === 'tab-agents',
            'focus did not follow to the Agents tab');
      await page.keyboard.press('End');
      check(await page.isVisible('#metrics'), 'End did not show Metrics');
      await waitFor('metrics rows', async () =>
        (await page.locator('#metrics-table-body tr').count()) > 0);
      await screenshot(page, t.artifacts, 'metrics');
      await page.keyboard.press('Home');
      check(await page.isVisible('#overview'), 'Home did not show Overview');
      await page.keyboard.press('ArrowLeft');
      check(await page.isVisible('#metrics'), 'ArrowLeft from the first tab did not wrap');
      await page.keyboard.press('ArrowLeft');
      await page.keyboard.press('ArrowLeft');
      await page.keyboard.press('ArrowLeft');
      check(await page.isVisible('#frameworks'), 'ArrowLeft did not reach Frameworks');
      // Tab leaves the tab list for the panel's controls.
      await page.keyboard.press('Tab');
      check(await page.evaluate(() => document.activeElement.id) !== 'tab-sandbox',
            'Tab moved along the tab list instead of into the panel');
      assertNoConsoleErrors(page);
    });

    await t.step('the agents view lists the agent with its resources', async () => {
      await page.click('#tab-agents');
      await waitFor('an agent row', async () =>
        (await page.locator('#agents-table-body tr').count()) === 1);
      const row = await page.textContent('#agents-table-body tr');
      check(/\d+(\.\d+)? \/ \d+/.test(row), `agent row shows no cpus: ${row}`);
      await screenshot(page, t.artifacts, 'agents');
    });

    await t.step('a task run with tessera execute reaches RUNNING in the Tasks view', async () => {
      execute = spawn(tesseraBinary(), [
        'execute', `--master=${new URL(local.master).host}`, '--name=ui-hello',
        '--command=echo hello-from-the-ui-test; sleep 300', '--resources=cpus:0.1;mem:32',
      ], { stdio: 'ignore' });
      await page.click('#tab-tasks');
      await page.fill('#tasks-table-filter', 'ui-hello');
      const row = page.locator('#tasks-table-body tr', { hasText: 'ui-hello' });
      await waitFor('ui-hello RUNNING in the UI', async () =>
        (await row.count()) === 1 && (await row.textContent()).includes('TASK_RUNNING'),
      { timeout: 60000 });
      // The state filter hides it once RUNNING is unchecked.
      await page.uncheck('#task-states input[value="TASK_RUNNING"]');
      await waitFor('the RUNNING filter to hide the task', async () => (await row.count()) === 0);
      await page.check('#task-states input[value="TASK_RUNNING"]');
      await waitFor('the task to come back', async () => (await row.count()) === 1);
      await screenshot(page, t.artifacts, 'tasks');
      await page.click('#tab-frameworks');
      await waitFor('the tessera-execute framework', async () =>
        (await page.textContent('#frameworks-table-body')).includes('tessera-execute'));
      await screenshot(page, t.artifacts, 'frameworks');
      assertNoConsoleErrors(page);
    });

    await t.step('the task\'s stdout opens from its sandbox', async () => {
      await page.click('#tab-tasks');
      await page.click('#tasks-table-body tr:has-text("ui-hello") button[data-sandbox]');
      check(await page.isVisible('#sandbox'), 'the sandbox view did not open');
      const stdout = page.locator('#sandbox-table-body button[data-path$="/stdout"]');
      await waitFor('stdout in the sandbox listing', async () => (await stdout.count()) === 1);
      await stdout.click();
      await waitFor('the task\'s output in the viewer', async () =>
        (await page.textContent('#viewer-text')).includes('hello-from-the-ui-test'));
      await screenshot(page, t.artifacts, 'sandbox-stdout');
      assertNoConsoleErrors(page);
    });
  } finally {
    if (execute && execute.exitCode === null) execute.kill('SIGTERM');
  }
}
