/**
 * Pipeline benchmark: the grayscale batch on the lab cluster (8 workers) next to one process
 * on this machine doing the same work with the same code (download over signed URLs, convert,
 * upload to the same Azurite), at the demo's 49 photos and at 1,000 photos of the demo's sizes.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, up } from '../app/clusters.js';
import { storageFor } from '../jobs/storage.js';
import { runBatch, type BatchSummary } from '../jobs/batch.js';
import { photos } from '../jobs/images.js';
import { DEMO_IMAGES, type DemoStorage } from '../jobs/demo.js';
import type { BatchBlob } from '../jobs/manifest.js';
import { isGrayscale } from '../jobs/grayscale.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const SINGLE_TASK = fileURLToPath(new URL('./single-task.js', import.meta.url));

/** The reference: one process doing the tasks' work (signed-URL download, convert, upload) on this machine. */
function timeReference(plan: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SINGLE_TASK, plan], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(Math.round(performance.now() - t0)) : reject(new Error(`single process exited ${code}`))));
  });
}

export interface PipelineSize {
  images: number;
  /** Megapixels of all the images together. */
  megapixels: number;
  cluster: {
    workers: number;
    wallMs: { median: number; runs: number[] };
    /** Median of each phase over the runs (see BatchSummary.phases): where the wall time goes. */
    phasesMs: BatchSummary['phases'];
    imagesPerSecond: number;
    perNode: Record<string, number>;
  };
  singleProcess: { wallMs: { median: number; runs: number[] }; imagesPerSecond: number };
  /** Cluster images/s divided by single-process images/s (the target: at least 0.8 at 1,000 photos). */
  ratio: number;
  /** Every output there, from both; a sample of each checked to be grayscale. */
  outputs: { cluster: number; singleProcess: number; sampledGrayscale: number; sampled: number };
}

export interface PipelineBench {
  /** The demo's 49 photos. */
  demo: PipelineSize;
  /** BENCH_PIPELINE_IMAGES (default 1,000) photos as the demo makes them. */
  large: PipelineSize;
}

async function uploadPhotos(storage: DemoStorage, container: string, count: number): Promise<number> {
  await storage.mk(container);
  let pixels = 0;
  const uploads: Promise<void>[] = [];
  await photos(count, (img) => {
    pixels += img.width * img.height;
    uploads.push(storage.putData(container, img.name, img.data, { metadata: {}, contentType: 'image/jpeg' }));
  });
  await Promise.all(uploads);
  return Math.round(pixels / 1e5) / 10;
}

/**
 * The batch on the cluster and the reference process, alternating which goes first, over the
 * same input container; the cluster writes `<input>-out`, the reference `<input>-ref`.
 */
async function measure(home: string, cluster: string, storage: DemoStorage, here: DemoStorage, input: string, megapixels: number, runs: number, workers: number): Promise<PipelineSize> {
  const out = `${input}-out`;
  const ref = `${input}-ref`;
  await storage.mk(out);
  await storage.mk(ref);
  const blobs = await storage.list(input);
  const day = 24 * 3600;
  const plan: BatchBlob[] = [];
  for (const [index, b] of blobs.entries()) {
    plan.push({ index, name: b.name, etag: b.etag, size: b.size, contentType: 'image/jpeg', getUrl: await here.signedUrl!(input, b.name, 'r', day), putUrl: await here.signedUrl!(ref, b.name, 'cw', day) });
  }
  const planFile = join(home, `${input}-plan.json`);
  await writeFile(planFile, JSON.stringify({ blobs: plan }), { mode: 0o600 });
  const clusterRuns: number[] = [];
  const singleRuns: number[] = [];
  const phases: BatchSummary['phases'][] = [];
  let perNode: Record<string, number> = {};
  const onCluster = async () => {
    const s = await runBatch({ cluster, input, output: out, mode: { builtin: 'grayscale' }, storage, force: true });
    if (s.converted !== blobs.length) throw new Error(`pipeline converted ${s.converted} of ${blobs.length}: ${JSON.stringify(s.failed.slice(0, 3))}`);
    clusterRuns.push(s.wallMs);
    phases.push(s.phases);
    perNode = s.perNode;
  };
  // One pass untimed first: a freshly filled Azurite answers the first pass over its blobs slower.
  await timeReference(planFile);
  for (let r = 1; r <= runs; r++) {
    if (r % 2 === 1) await onCluster();
    singleRuns.push(await timeReference(planFile));
    if (r % 2 === 0) await onCluster();
    log(`bench: pipeline ${blobs.length} photos, round ${r}: cluster ${clusterRuns.at(-1)} ms (${JSON.stringify(phases.at(-1))}), single process ${singleRuns.at(-1)} ms`);
  }
  const [outs, refs] = await Promise.all([storage.list(out), storage.list(ref)]);
  const step = Math.max(1, Math.floor(outs.length / 20));
  let sampled = 0;
  let gray = 0;
  for (const b of outs.filter((_, i) => i % step === 0)) {
    sampled += 2;
    if (await isGrayscale(await storage.getData(out, b.name))) gray++;
    if (await isGrayscale(await storage.getData(ref, b.name))) gray++;
  }
  const clusterIps = (blobs.length / median(clusterRuns)) * 1000;
  const singleIps = (blobs.length / median(singleRuns)) * 1000;
  return {
    images: blobs.length,
    megapixels,
    cluster: {
      workers,
      wallMs: { median: median(clusterRuns), runs: clusterRuns },
      phasesMs: {
        prepareMs: median(phases.map((p) => p.prepareMs)),
        queueMs: median(phases.map((p) => p.queueMs)),
        runMs: median(phases.map((p) => p.runMs)),
        collectMs: median(phases.map((p) => p.collectMs)),
      },
      imagesPerSecond: Math.round(clusterIps * 10) / 10,
      perNode,
    },
    singleProcess: { wallMs: { median: median(singleRuns), runs: singleRuns }, imagesPerSecond: Math.round(singleIps * 10) / 10 },
    ratio: Math.round((clusterIps / singleIps) * 100) / 100,
    outputs: { cluster: outs.length, singleProcess: refs.length, sampledGrayscale: gray, sampled },
  };
}

export async function benchPipeline(home: string, runs: number): Promise<PipelineBench> {
  process.env.SLURMKIT_HOME = home;
  const name = 'benchlab';
  const text = await templateText('lab');
  const state = await up({ config: parseSpec(text, 'template lab', { name }), specText: text });
  try {
    const storage = await storageFor(name);
    const here = await storageFor(name, { signFor: 'here' });
    const workers = state.nodes.length - 1;
    const demoMp = await uploadPhotos(storage, 'demo', DEMO_IMAGES);
    const demo = await measure(home, name, storage, here, 'demo', demoMp, runs, workers);
    const count = Number(process.env.BENCH_PIPELINE_IMAGES ?? 1000);
    const t0 = performance.now();
    const largeMp = await uploadPhotos(storage, 'large', count);
    log(`bench: ${count} photos (${largeMp} MP) made and uploaded in ${Math.round(performance.now() - t0)} ms`);
    const large = await measure(home, name, storage, here, 'large', largeMp, runs, workers);
    return { demo, large };
  } finally {
    await down(name, { force: true }).catch(() => undefined);
  }
}
