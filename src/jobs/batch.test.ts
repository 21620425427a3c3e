/**
 * Blob pipelines on a real cluster: real Slurm, real Azurite in the head node, real sharp.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { up } from '../app/clusters.js';
import { runInHead } from '../cluster/nodes.js';
import { requireState } from '../cluster/state.js';
import { ClusterPaths } from '../cluster/paths.js';
import { cleanupHome, useTempHome } from '../testing/harness.js';
import { storageFor } from './storage.js';
import { runBatch } from './batch.js';
import { runImageDemo, DEMO_IMAGES, type DemoStorage } from './demo.js';
import { photo } from './images.js';
import { Progress } from '../util/progress.js';
import { ensureBlobStorage, openBlobStore } from '../storage/blob.js';

describe('blob batch pipelines', () => {
  let home: string;
  let storage: DemoStorage;
  const cluster = 'tblob';

  before(async () => {
    home = await useTempHome();
    const text = await templateText('lab');
    await up({ config: parseSpec(text, 'template lab', { name: cluster }), specText: text });
    storage = await storageFor(cluster);
  });

  after(async () => {
    await cleanupHome(home);
  });

  const batchDirs = async () => (await readdir(join(ClusterPaths.of(cluster).root, 'batches')).catch(() => [] as string[])).sort();

  /** A fresh input container of the test's own: three photos, then a corrupt, an empty and a text blob. */
  const mixedInput = async (container: string): Promise<void> => {
    await storage.mk(container);
    for (const i of [0, 1, 2]) {
      const p = await photo(i);
      await storage.putData(container, p.name, p.data, { metadata: {}, contentType: 'image/jpeg' });
    }
    const p = await photo(3);
    await storage.putData(container, 'corrupt.jpg', p.data.subarray(0, 3000), { metadata: {}, contentType: 'image/jpeg' });
    await storage.putData(container, 'empty.jpg', Buffer.alloc(0), { metadata: {}, contentType: 'image/jpeg' });
    await storage.putData(container, 'notes.txt', Buffer.from('not an image'), { metadata: {}, contentType: 'text/plain' });
  };

  /** An input container of the test's own with one photo. */
  const onePhotoInput = async (container: string): Promise<void> => {
    await storage.mk(container);
    const p = await photo(0);
    await storage.putData(container, p.name, p.data, { metadata: {}, contentType: 'image/jpeg' });
  };

  test('the demo: 49 colour photos become grayscale, spread over at least 4 workers', async () => {
    // The demo's containers are fixed (input, output): start from none, whatever ran before.
    const store = await openBlobStore(await ensureBlobStorage(cluster));
    for (const c of ['input', 'output']) await store.rm(c, undefined, { missingOk: true });
    const r = await runImageDemo({ cluster, storage, progress: Progress.silent() });
    assert.equal(r.uploaded, DEMO_IMAGES);
    assert.equal(r.batch.converted, DEMO_IMAGES);
    assert.deepEqual(r.batch.failed, []);
    assert.equal(r.verified, DEMO_IMAGES);
    assert.ok(Object.keys(r.batch.perNode).length >= 4, `spread: ${JSON.stringify(r.batch.perNode)}`);
    assert.equal(Object.values(r.batch.perNode).reduce((a, b) => a + b, 0), DEMO_IMAGES);
    const outputs = await storage.list('output');
    assert.equal(outputs.length, DEMO_IMAGES);
    const one = await storage.getData('output', 'photo-007.jpg');
    const meta = await sharp(one).metadata();
    assert.equal(meta.channels, 1);
    assert.equal(meta.format, 'jpeg');
  });

  test('a rerun converts nothing and reports 49 skipped', async () => {
    // A first run of its own (a no-op if the demo already ran), so the second is a rerun.
    const first = await runImageDemo({ cluster, storage, progress: Progress.silent() });
    assert.equal(first.verified, DEMO_IMAGES);
    const r = await runImageDemo({ cluster, storage, progress: Progress.silent() });
    assert.equal(r.uploaded, 0);
    assert.equal(r.batch.converted, 0);
    assert.equal(r.batch.skipped, DEMO_IMAGES);
    assert.equal(r.batch.jobIds.length, 0, 'no job was submitted');
  });

  test('a corrupt, an empty and a text blob are reported by name; the others are converted', async () => {
    await mixedInput('mixed');
    await storage.mk('mixed-out');
    const r = await runBatch({ cluster, input: 'mixed', output: 'mixed-out', mode: { builtin: 'grayscale' }, storage });
    assert.equal(r.converted, 3);
    const failed = new Map(r.failed.map((f) => [f.blob, f.reason]));
    assert.deepEqual([...failed.keys()].sort(), ['corrupt.jpg', 'empty.jpg', 'notes.txt']);
    assert.match(failed.get('empty.jpg')!, /empty/);
    assert.match(failed.get('notes.txt')!, /not an image/);
    assert.match(failed.get('corrupt.jpg')!, /corrupt|not an image/);
    const outs = (await storage.list('mixed-out')).map((b) => b.name).sort();
    assert.deepEqual(outs, ['photo-001.jpg', 'photo-002.jpg', 'photo-003.jpg'], 'no output for a failed blob');
  });

  test('a user command runs per blob with input and output paths', async () => {
    await mixedInput('sizes-in');
    await storage.mk('sizes');
    const r = await runBatch({
      cluster,
      input: 'sizes-in',
      output: 'sizes',
      mode: { command: ['bash', '-c', 'stat -c %s "$1" > "$2"', 'size-of'] },
      storage,
    });
    assert.equal(r.converted, 6);
    assert.equal((await storage.getData('sizes', 'empty.jpg')).toString().trim(), '0');
    assert.equal((await storage.getData('sizes', 'notes.txt')).toString().trim(), String('not an image'.length));
  });

  test('a task killed half-way is retried, and every blob is counted once', async () => {
    await mixedInput('retry-in');
    await storage.mk('retry-out');
    const marker = join(home, 'killed-once');
    // The first time any task reaches photo-002, it kills its own task process (the command's parent).
    const script = `if [ "$(basename "$1")" = photo-002.jpg ] && mkdir ${marker} 2>/dev/null; then kill -9 $PPID; sleep 5; fi; cp "$1" "$2"`;
    const r = await runBatch({ cluster, input: 'retry-in', output: 'retry-out', mode: { command: ['bash', '-c', script, 'copy'] }, storage, tasks: 2 });
    assert.ok(existsSync(marker), 'the task was killed once');
    assert.equal(r.attempts, 2);
    assert.equal(r.converted, 6);
    assert.deepEqual(r.failed, []);
    assert.equal((await storage.list('retry-out')).length, 6);
  });

  test('a batch whose tasks cannot start (every worker drained) says why, stops at its timeout and leaves no job', async () => {
    const state = await requireState(cluster);
    await onePhotoInput('drained-in');
    await storage.mk('drained-out');
    await runInHead(state, 'scontrol update nodename=c[1-8] state=drain reason=maintenance');
    try {
      const reasons: string[] = [];
      const started = performance.now();
      await assert.rejects(
        runBatch({ cluster, input: 'drained-in', output: 'drained-out', mode: { builtin: 'grayscale' }, storage, timeoutMs: 3000, onProgress: (p) => void (p.pending && reasons.push(p.pending)) }),
        (e: Error & { code?: string; hint?: string }) => {
          assert.equal(e.code, 'TIMEOUT');
          assert.match(e.message, /did not finish within 3 s; job \d+ was cancelled/);
          assert.match(e.hint ?? '', /waiting in the queue .*(DRAINED|ReqNodeNotAvail).*sinfo -R/);
          return true;
        },
      );
      assert.ok(performance.now() - started < 15_000, 'the timeout was kept');
      assert.ok(reasons.some((r) => /task\(s\) pending: .*(DRAINED|ReqNodeNotAvail)/.test(r)), `progress said why: ${JSON.stringify(reasons)}`);
      assert.equal((await runInHead(state, 'squeue -h -o %i')).trim(), '', 'the job was cancelled');
      assert.equal((await storage.list('drained-out')).length, 0);
    } finally {
      await runInHead(state, 'scontrol update nodename=c[1-8] state=resume');
    }
  });

  test('bad container names, missing containers and a bad connection string change nothing', async () => {
    await onePhotoInput('names-in');
    await storage.mk('names-out');
    const before_ = await batchDirs();
    await assert.rejects(runBatch({ cluster, input: 'Bad_Name', output: 'names-out', mode: { builtin: 'grayscale' }, storage }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'USAGE');
      assert.match(e.message, /--input "Bad_Name"/);
      return true;
    });
    await assert.rejects(runBatch({ cluster, input: 'nosuch', output: 'names-out', mode: { builtin: 'grayscale' }, storage }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NOT_FOUND');
      assert.match(e.message, /nosuch/);
      return true;
    });
    await assert.rejects(runBatch({ cluster, input: 'names-in', output: 'missing-out', mode: { builtin: 'grayscale' }, storage }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NOT_FOUND');
      assert.match(e.message, /missing-out/);
      return true;
    });
    assert.deepEqual(await batchDirs(), before_, 'no batch was started');
    assert.deepEqual((await storage.list('names-in')).map((b) => b.name), ['photo-001.jpg'], 'input unchanged');
    assert.deepEqual(await storage.list('names-out'), [], 'nothing written');

    const secret = 'c2VjcmV0LWtleS1ub3QtdG8tYmUtc2hvd24=';
    process.env.AZURE_STORAGE_CONNECTION_STRING = `DefaultEndpointsProtocol=http;AccountName=x;AccountKey=${secret};BlobEndpointX=oops`;
    try {
      await assert.rejects(storageFor(cluster), (e: Error & { code?: string; hint?: string }) => {
        assert.match(e.message, /AZURE_STORAGE_CONNECTION_STRING/);
        assert.ok(!e.message.includes(secret) && !(e.hint ?? '').includes(secret), 'the key is not echoed');
        return true;
      });
    } finally {
      delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    }
    assert.deepEqual(await batchDirs(), before_);

    // The same containers, spelled right, start a batch that batchDirs sees: the checks above look where batches go.
    const ok = await runBatch({ cluster, input: 'names-in', output: 'names-out', mode: { builtin: 'grayscale' }, storage });
    assert.equal(ok.converted, 1);
    assert.deepEqual(await batchDirs(), [...before_, ok.batchId].sort());
  });
});
