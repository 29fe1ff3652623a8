// The master's web UI on a real `tessera local`.
import { assertNoConsoleErrors, check, openPage, screenshot, waitFor } from '../harness.mjs';

export default async function (t) {
  const local = await t.startLocal();
  const page = await openPage(t.browser);

  await t.step('the master serves its page at /', async () => {
    const response = await page.goto(`${local.master}/`);
    check(response.ok(), `GET / answered ${response.status()}`);
    check((response.headers()['content-type'] || '').startsWith('text/html'),
          `GET / is ${response.headers()['content-type']}`);
    await screenshot(page, t.artifacts, 'master-home');
    assertNoConsoleErrors(page);
  });

  await t.step('paths out of the web UI are refused', async () => {
    for (const path of ['/static/../../../etc/passwd', '/static/%2e%2e/%2e%2e/etc/passwd']) {
      const response = await fetch(`${local.master}${path}`);
      const body = await response.text();
      check(response.status === 404, `${path} answered ${response.status}`);
      check(!body.includes('root:'), `${path} leaked a file`);
    }
  });
  void waitFor;
}
