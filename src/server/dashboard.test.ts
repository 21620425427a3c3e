/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a real
 * server and cluster: sign in, see nodes idle, see a change made with the CLI, submit a job and
 * read its output, run the demo and compare input and output thumbnails, add and remove a node.
 * Screenshots go to test-artifacts/dashboard (SLURMKIT_ARTIFACTS overrides the folder).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../testing/browser.js';
import { cleanupHome, useTempHome } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { startServer, type RunningServer } from './serve.js';

const ARTIFACTS = resolve(process.env['SLURMKIT_ARTIFACTS'] ?? 'test-artifacts', 'dashboard');
const CLUSTER = 'tdash';

describe('dashboard in Chromium', () => {
  let home: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  before(async () => {
    home = await useTempHome();
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startServer({ port: 0 });
    // Made with the CLI, as a user would, while the server runs: the dashboard must find it.
    await writeFile(join(home, 'tdash.yaml'), `name: ${CLUSTER}\nnodes: [{name: c, count: 4}]\naccounting: true\nusers: [{name: alice}]\n`);
    const upped = await runCli(['up', '-f', join(home, 'tdash.yaml')], { home, timeoutMs: 120_000 });
    assert.equal(upped.code, 0, upped.stderr);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await cleanupHome(home);
  });

  test('asks for the token, refuses a wrong one, then lists the cluster', async () => {
    await page.goto(server.url);
    await page.fill('#token', 'skt_wrong');
    await page.click('#tokenForm button');
    await page.waitForSelector('text=That token was not accepted.');
    await page.fill('#token', server.newToken!);
    await page.click('#tokenForm button');
    await page.waitForSelector(`tr[data-cluster="${CLUSTER}"] >> text=running`);
    await shot('1-clusters');
  });

  test('the cluster page shows every worker idle, partitions and an empty queue', async () => {
    await page.click(`a[href="#/c/${CLUSTER}"]`);
    for (const n of ['c1', 'c2', 'c3', 'c4']) await page.waitForSelector(`.node[data-node="${n}"][data-state="idle"]`);
    assert.equal(await page.getAttribute('.node[data-node="c1"]', 'data-kind'), 'idle');
    await page.waitForSelector('#parts >> text=c[1-4]');
    await page.waitForSelector('#queue >> text=The queue is empty.');
    await shot('2-cluster');
  });

  test('a node drained with the CLI turns red in the grid without a reload, and back when resumed', async () => {
    const drain = await runCli(['exec', CLUSTER, '--', 'scontrol', 'update', 'nodename=c2', 'state=drain', 'reason=dashboard-test'], { home });
    assert.equal(drain.code, 0, drain.stderr);
    await page.waitForSelector('.node[data-node="c2"][data-kind="drain"]', { timeout: 10_000 });
    await shot('3-drained');
    const resume = await runCli(['exec', CLUSTER, '--', 'scontrol', 'update', 'nodename=c2', 'state=resume'], { home });
    assert.equal(resume.code, 0, resume.stderr);
    await page.waitForSelector('.node[data-node="c2"][data-kind="idle"]', { timeout: 10_000 });
  });

  test('submitting a job from the form shows it finish, with its output', async () => {
    await page.fill('#script', '#!/bin/bash\n#SBATCH -N 2\nsrun hostname | sort\nid -un\n');
    await page.fill('#user', 'alice');
    await page.click('#submitForm button');
    await page.waitForSelector('#jobState[data-state="COMPLETED"]', { timeout: 60_000 });
    await page.waitForSelector('#jobOutput:not([hidden])');
    assert.match((await page.textContent('#jobOutput')) ?? '', /^c\d\nc\d\nalice\n$/);
    const id = await page.getAttribute('#jobState', 'data-job');
    await page.waitForSelector(`#history tr[data-job="${id}"][data-state="COMPLETED"]`, { timeout: 20_000 });
    await shot('4-job');
  });

  test('the demo button runs the demo with live progress; the blob browser shows colour inputs beside gray outputs', async () => {
    await page.click('#demo');
    await page.waitForSelector('[data-count]');
    await page.waitForSelector('[data-op-status="succeeded"]', { timeout: 180_000 });
    assert.equal(await page.getAttribute('[data-count]', 'data-count'), '49/49');
    await page.click('#browse');
    await page.waitForSelector('#blobInfo >> text=49 in input, 49 in output');
    // Each thumbnail's pixels, read in the page: inputs have colour, outputs have none.
    // (Strings: this file is compiled without the DOM's types.)
    await page.waitForFunction("[...document.querySelectorAll('.pair img')].every((i) => i.complete && i.naturalWidth > 0)", undefined, { timeout: 30_000 });
    const spread = (await page.evaluate(`[...document.querySelectorAll('.pair img')].map((img) => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let max = 0;
      for (let i = 0; i < d.length; i += 4) max = Math.max(max, Math.abs(d[i] - d[i + 1]), Math.abs(d[i + 1] - d[i + 2]));
      return { side: img.dataset.side, max };
    })`)) as { side: string; max: number }[];
    const left = spread.filter((s) => s.side === 'left');
    const right = spread.filter((s) => s.side === 'right');
    assert.equal(left.length, 24);
    assert.equal(right.length, 24);
    assert.ok(left.every((s) => s.max > 40), `inputs are in colour: ${JSON.stringify(left)}`);
    assert.ok(right.every((s) => s.max <= 8), `outputs are gray: ${JSON.stringify(right)}`);
    await shot('5-demo-blobs');
  });

  test('add a node with the button, then remove it from its tile; both show as scale events', async () => {
    await page.fill('#addCount', '1');
    await page.click('#add');
    await page.waitForSelector('.node[data-node="c5"][data-state="idle"]', { timeout: 60_000 });
    await page.waitForSelector('[data-op-status="succeeded"]');
    await page.click('button[data-terminate="c5"]');
    await page.waitForSelector('.node[data-node="c5"]', { state: 'detached', timeout: 60_000 });
    await page.waitForSelector('#scale >> text=terminate-nodes', { timeout: 10_000 });
    await page.waitForSelector('#scale >> text=add-nodes');
    await shot('6-scaled');
  });
});
