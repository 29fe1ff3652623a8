#!/usr/bin/env node
// Runs one browser-test spec: `node tests/ui/run.mjs <name>` runs specs/<name>.spec.mjs (a path
// works too). A spec exports `default async function (t)`; `t` has `browser` (headless chromium),
// `artifacts` (its folder for screenshots and logs), `startLocal(args)` (a `tessera local` that
// stops after the spec) and `step(name, fn)` (one check, reported on its own line).
//
// Exit codes: 0 passed; 1 failed; 77 skipped (ctest's SKIP_RETURN_CODE) when chromium or
// playwright-core is missing and CI is not set. Under CI=true a missing piece is a failure.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import * as harness from './harness.mjs';

const kSkip = 77;

function usage() {
  console.error('usage: node tests/ui/run.mjs <spec name or file>');
  process.exit(2);
}

// Missing tools skip the test on a developer's machine and fail it in CI.
async function missingTools() {
  const missing = [];
  if (!fs.existsSync(harness.chromiumPath)) {
    missing.push(`${harness.chromiumPath} (Debian package chromium)`);
  }
  try {
    await import('playwright-core');
  } catch {
    missing.push('playwright-core (run `npm ci` in tests/ui)');
  }
  if (!fs.existsSync(harness.tesseraBinary())) {
    missing.push(`${harness.tesseraBinary()} (build it, or set TESSERA_BINARY)`);
  }
  return missing;
}

async function main() {
  const arg = process.argv[2];
  if (!arg) usage();
  const file = fs.existsSync(arg) ? path.resolve(arg)
                                  : path.join(harness.uiDir, 'specs', `${arg}.spec.mjs`);
  if (!fs.existsSync(file)) {
    console.error(`no spec '${arg}' (looked for ${file})`);
    process.exit(2);
  }
  const name = path.basename(file).replace(/\.spec\.mjs$/, '');

  const missing = await missingTools();
  if (missing.length > 0) {
    const ci = process.env.CI === 'true' || process.env.CI === '1';
    console.error(`${ci ? 'FAIL' : 'SKIP'} ${name}: missing ${missing.join(', ')}`);
    process.exit(ci ? 1 : kSkip);
  }

  const artifacts = harness.artifactsDir(name);
  const cleanups = [];
  let passed = 0;
  let failed = 0;
  const started = Date.now();
  const t = {
    artifacts,
    browser: null,
    async startLocal(args = []) {
      const local = await harness.startLocal(args, { artifacts });
      cleanups.push(() => local.stop());
      return local;
    },
    async step(title, fn) {
      const begin = Date.now();
      try {
        await fn();
        passed += 1;
        console.log(`ok ${passed + failed} - ${title} (${Date.now() - begin} ms)`);
      } catch (error) {
        failed += 1;
        console.log(`not ok ${passed + failed} - ${title}\n${String(error.stack || error)}`);
        throw error;
      }
    },
  };
  let spec;
  try {
    spec = await import(pathToFileURL(file).href);
    t.browser = await harness.launchBrowser();
    cleanups.push(() => t.browser.close());
    await spec.default(t);
  } catch (error) {
    if (failed === 0) {
      failed += 1;
      console.log(`not ok - ${name}\n${String(error.stack || error)}`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error) => console.error(`cleanup: ${error.message}`));
    }
  }
  console.log(`${name}: ${Date.now() - started} ms; artifacts in ${artifacts}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main();
