// Marathon's web UI on a real `tessera local`: a refused app definition shows Marathon's error
// with the failing path; an app created with the page's form reaches running and is scaled to
// two instances whose links point at their host:port, then destroyed; the page follows without
// a reload and logs no console error.
import { assertNoConsoleErrors, check, openPage, screenshot, waitFor } from '../harness.mjs';

export default async function (t) {
  const local = await t.startLocal();
  const page = await openPage(t.browser);
  const row = page.locator('tr[data-app="/ui-test/sleeper"]');

  await t.step('/ redirects to the UI at /ui/, which follows the event stream', async () => {
    await page.goto(`${local.marathon}/`);
    check(new URL(page.url()).pathname === '/ui/', `/ led to ${page.url()}`);
    await page.getByRole('heading', { name: 'Marathon', exact: true }).waitFor();
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await screenshot(page, t.artifacts, 'marathon-empty');
    assertNoConsoleErrors(page);
  });

  await t.step('a refused definition shows the status, the message and the failing path', async () => {
    await page.getByRole('button', { name: 'Create application' }).click();
    const dialog = page.locator('#app-dialog');
    await dialog.getByRole('radio', { name: 'JSON' }).check();
    await dialog.getByLabel('App definition (JSON)')
      .fill('{"id": "/ui-test/refused", "cmd": "sleep 1", "cpus": -1, "mem": 16}');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    const error = dialog.locator('#app-error');
    await error.filter({ hasText: '/cpus' }).waitFor();
    const text = await error.textContent();
    check(text.startsWith('422: '), `the error reads ${JSON.stringify(text)}`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await waitFor('the dialog to close', () => dialog.isHidden());
    const answer = await fetch(`${local.marathon}/v2/apps/ui-test/refused`);
    check(answer.status === 404, `the refused app exists (${answer.status})`);
    // Chromium logs the refused request itself; that line is expected, any other is not.
    page.problems = page.problems.filter((problem) => !/status of 422\b/.test(problem));
    assertNoConsoleErrors(page);
  });

  await t.step('an app created with the form reaches running', async () => {
    await page.getByRole('button', { name: 'Create application' }).click();
    const dialog = page.locator('#app-dialog');
    await dialog.getByLabel('ID').fill('/ui-test/sleeper');
    await dialog.getByLabel('Command').fill('sleep 600');
    await dialog.getByLabel('CPUs').fill('0.1');
    await dialog.getByLabel('Memory (MiB)').fill('16');
    await dialog.getByLabel('Instances').fill('1');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    await waitFor('the dialog to close', () => dialog.isHidden());
    await row.locator('.running-count', { hasText: '1 / 1' }).waitFor({ timeout: 60000 });
    await row.locator('.status', { hasText: 'Running' }).waitFor({ timeout: 30000 });
    const answer = await (await fetch(`${local.marathon}/v2/apps/ui-test/sleeper`)).json();
    check(answer.app.tasksRunning === 1, `the API says ${answer.app.tasksRunning} running`);
    await screenshot(page, t.artifacts, 'marathon-running');
    assertNoConsoleErrors(page);
  });

  await t.step('scaled to two, its instances link to host:port', async () => {
    await page.getByRole('button', { name: 'Scale /ui-test/sleeper' }).first().click();
    const scale = page.locator('#scale-dialog').getByLabel('Instances');
    await scale.fill('2');
    await scale.press('Enter');
    await row.locator('.running-count', { hasText: '2 / 2' }).waitFor({ timeout: 60000 });
    await waitFor('two running instances in the details', async () =>
      (await page.locator('#instances .task-state', { hasText: 'running' }).count()) === 2);
    const links = await page.locator('#instances a').evaluateAll((as) => as.map((a) => a.href));
    check(links.length === 2 && links.every((href) => /^http:\/\/127\.0\.0\.1:\d+\/$/.test(href)),
          `instance links: ${JSON.stringify(links)}`);
    await screenshot(page, t.artifacts, 'marathon-scaled');
    assertNoConsoleErrors(page);
  });

  await t.step('the deployments and queue tabs are reached with the arrow keys', async () => {
    await page.getByRole('tab', { name: /Applications/ }).focus();
    await page.keyboard.press('ArrowRight');
    await page.locator('#panel-deployments').waitFor();
    await page.keyboard.press('ArrowRight');
    await page.locator('#panel-queue').waitFor();
    await screenshot(page, t.artifacts, 'marathon-queue');
    await page.keyboard.press('Home');
    await page.locator('#panel-apps').waitFor();
    assertNoConsoleErrors(page);
  });

  await t.step('destroyed after confirming, the app leaves the list', async () => {
    await page.getByRole('button', { name: 'Destroy /ui-test/sleeper' }).first().click();
    await page.locator('#confirm-dialog').getByRole('button', { name: 'Destroy' }).click();
    await row.waitFor({ state: 'detached', timeout: 60000 });
    const answer = await fetch(`${local.marathon}/v2/apps/ui-test/sleeper`);
    check(answer.status === 404, `the API still has the app (${answer.status})`);
    assertNoConsoleErrors(page);
  });
}
