// Chronos's web UI on a real `tessera local`: a job and a job depending on it are created with
// the page's form, the graph draws the dependency, "Run now" runs the parent and then its child,
// and the page shows both successes without a reload; no console error.
import { assertNoConsoleErrors, check, openPage, screenshot, waitFor } from '../harness.mjs';

async function createJob(page, { name, command, parent }) {
  await page.getByRole('button', { name: 'New job' }).click();
  const dialog = page.locator('#job-dialog');
  await dialog.getByLabel('Name').fill(name);
  await dialog.getByLabel('Command').fill(command);
  if (parent) {
    await dialog.getByRole('radio', { name: 'after its parents' }).check();
    await dialog.getByRole('textbox', { name: 'Parents' }).fill(parent);
  }
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  await waitFor(`the dialog for '${name}' to close`, () => dialog.isHidden());
  await page.locator(`tr[data-job="${name}"]`).waitFor();
}

export default async function (t) {
  const local = await t.startLocal();
  const page = await openPage(t.browser);
  const graph = page.locator('#graph svg');
  const successes = (name) => page.locator(`tr[data-job="${name}"] .success-count`);

  await t.step('the UI is served at / beside the API', async () => {
    const response = await page.goto(`${local.chronos}/`);
    check(response.ok(), `GET / answered ${response.status()}`);
    await page.getByRole('heading', { name: 'Chronos', exact: true }).waitFor();
    await page.locator('#jobs-empty').waitFor();
    assertNoConsoleErrors(page);
  });

  await t.step('a job and its dependent are created with the form', async () => {
    // The form's default schedule starts an hour from now: the parent runs only when asked.
    await createJob(page, { name: 'ui-extract', command: 'echo extracted' });
    await createJob(page, { name: 'ui-load', command: 'echo loaded', parent: 'ui-extract' });
    const jobs = await (await fetch(`${local.chronos}/scheduler/jobs`)).json();
    const load = jobs.find((job) => job.name === 'ui-load');
    check(load && load.parents.includes('ui-extract'), `ui-load as stored: ${JSON.stringify(load)}`);
    assertNoConsoleErrors(page);
  });

  await t.step('the graph draws the child right of its parent, joined by an edge', async () => {
    await graph.locator('g.node[data-job="ui-extract"]').waitFor();
    await graph.locator('g.node[data-job="ui-load"]').waitFor();
    await graph.locator('path.edge[data-from="ui-extract"][data-to="ui-load"]')
      .waitFor({ state: 'attached' });
    const parent = await graph.locator('g.node[data-job="ui-extract"]').boundingBox();
    const child = await graph.locator('g.node[data-job="ui-load"]').boundingBox();
    check(parent.x + parent.width <= child.x, 'the child is not drawn right of its parent');
    await screenshot(page, t.artifacts, 'chronos-jobs');
    assertNoConsoleErrors(page);
  });

  await t.step('run now: the parent succeeds, then its child', async () => {
    await page.getByRole('button', { name: 'Run ui-extract now' }).click();
    await successes('ui-extract').filter({ hasText: /^1$/ }).waitFor({ timeout: 60000 });
    await successes('ui-load').filter({ hasText: /^1$/ }).waitFor({ timeout: 60000 });
    await page.locator('tr[data-job="ui-load"] .status', { hasText: 'success' }).waitFor();
    await graph.locator('g.node.success[data-job="ui-load"]').waitFor();
    await screenshot(page, t.artifacts, 'chronos-ran');
    assertNoConsoleErrors(page);
  });

  await t.step('an edit keeps the job and its counts', async () => {
    await page.getByRole('button', { name: 'Edit ui-load' }).click();
    const dialog = page.locator('#job-dialog');
    await dialog.getByLabel('Description').fill('loads what was extracted');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.locator('tr[data-job="ui-load"]', { hasText: 'loads what was extracted' }).waitFor();
    check((await successes('ui-load').textContent()) === '1', 'the edit lost the success count');
    assertNoConsoleErrors(page);
  });

  await t.step('delete asks first; the dependent goes with its only parent', async () => {
    await page.getByRole('button', { name: 'Delete ui-extract' }).click();
    await page.locator('#confirm-dialog').getByRole('button', { name: 'Delete' }).click();
    await page.locator('tr[data-job]').first().waitFor({ state: 'detached', timeout: 30000 });
    await page.locator('#jobs-empty').waitFor();
    assertNoConsoleErrors(page);
  });
}
