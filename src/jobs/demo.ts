/**
 * `slurmkit demo`: the classic exercise. 49 colour photos in container `input` become
 * grayscale in `output`, spread over the 8 workers of the lab cluster, verified one by one.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sharp } from './sharp.js';
import { photos } from './images.js';
import { isGrayscale } from './grayscale.js';
import { runBatch, type BatchStorage, type BatchSummary, type BatchProgress } from './batch.js';
import { SlurmkitError } from '../util/errors.js';
import type { Progress } from '../util/progress.js';

export const DEMO_IMAGES = 49;
const HASH_KEY = 'slurmkitsha256';

/** Blob operations the demo needs beyond the batch runner's. */
export interface DemoStorage extends BatchStorage {
  mk(container: string): Promise<void>;
  putData(container: string, blob: string, data: Buffer, opts: { metadata: Record<string, string>; contentType: string }): Promise<void>;
  getData(container: string, blob: string): Promise<Buffer>;
}

export interface DemoResult {
  uploaded: number;
  batch: BatchSummary;
  verified: number;
  /** Where the results were downloaded to, when asked. */
  downloadedTo?: string;
}

export async function runImageDemo(opts: {
  cluster: string;
  storage: DemoStorage;
  progress: Progress;
  force?: boolean;
  onBatchProgress?: (p: BatchProgress) => void;
  downloadTo?: string;
  signal?: AbortSignal;
}): Promise<DemoResult> {
  const { storage, progress } = opts;
  await progress.phase('create containers input, output', async () => {
    await storage.mk('input');
    await storage.mk('output');
  });
  const existing = new Map((await storage.list('input')).map((b) => [b.name, b.metadata[HASH_KEY]]));
  let uploaded = 0;
  await progress.phase(`generate and upload ${DEMO_IMAGES} photos`, async () => {
    const images = await photos(DEMO_IMAGES);
    await Promise.all(
      images.map(async (img) => {
        const sha = createHash('sha256').update(img.data).digest('hex');
        // Unchanged photos are not uploaded again, so a rerun finds every output up to date.
        if (existing.get(img.name) === sha) return;
        await storage.putData('input', img.name, img.data, { metadata: { [HASH_KEY]: sha }, contentType: 'image/jpeg' });
        uploaded++;
      }),
    );
  });
  const batch = await progress.phase('grayscale batch on the cluster', () =>
    runBatch({
      cluster: opts.cluster,
      input: 'input',
      output: 'output',
      mode: { builtin: 'grayscale' },
      storage,
      ...(opts.force ? { force: true } : {}),
      ...(opts.onBatchProgress ? { onProgress: opts.onBatchProgress } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    }),
  );
  const verified = await progress.phase(`verify ${DEMO_IMAGES} outputs`, async () => {
    const outs = new Set((await storage.list('output')).map((b) => b.name));
    const problems: string[] = [];
    let ok = 0;
    for (const name of (await storage.list('input')).map((b) => b.name)) {
      if (!outs.has(name)) {
        problems.push(`${name}: no output`);
        continue;
      }
      const [src, out] = await Promise.all([storage.getData('input', name), storage.getData('output', name)]);
      const [a, b] = await Promise.all([sharp(src).metadata(), sharp(out).metadata()]);
      if (a.width !== b.width || a.height !== b.height || a.format !== b.format) problems.push(`${name}: size or format changed`);
      else if (!(await isGrayscale(out))) problems.push(`${name}: not grayscale`);
      else ok++;
      if (opts.downloadTo) {
        await mkdir(opts.downloadTo, { recursive: true });
        await writeFile(join(opts.downloadTo, name), out);
      }
    }
    if (problems.length > 0) {
      throw new SlurmkitError('COMMAND_FAILED', `${problems.length} output(s) failed verification`, { details: problems });
    }
    return ok;
  });
  return { uploaded, batch, verified, ...(opts.downloadTo ? { downloadedTo: opts.downloadTo } : {}) };
}
