/**
 * Pipeline benchmark: the 49-image grayscale demo on the lab cluster next to one process
 * converting the same images with sharp on the same machine, and 1,000 small images.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sharp } from '../jobs/sharp.js';
import { parseSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, up } from '../app/clusters.js';
import { storageFor } from '../jobs/storage.js';
import { runBatch, type BatchSummary } from '../jobs/batch.js';
import { photos } from '../jobs/images.js';
import { isGrayscale } from '../jobs/grayscale.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

/**
 * One `node` process: start, load the same converter the array tasks use, convert every file
 * of a folder with as many images in flight as the machine has cores, exit.
 */
const SINGLE_PROCESS = `
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
const { grayscale } = await import(process.env.GRAYSCALE_MODULE);
const [dir, out] = process.argv.slice(2);
const files = readdirSync(dir);
let next = 0;
const worker = async () => {
  while (next < files.length) {
    const f = files[next++];
    writeFileSync(out + '/' + f, (await grayscale(readFileSync(dir + '/' + f))).data);
  }
};
await Promise.all(Array.from({ length: availableParallelism() }, worker));
`;

function timeProcess(args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const env = { ...process.env, GRAYSCALE_MODULE: new URL('../jobs/grayscale.js', import.meta.url).href };
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], cwd, env });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(Math.round(performance.now() - t0)) : reject(new Error(`single process exited ${code}`))));
  });
}

async function smallImage(i: number): Promise<Buffer> {
  const w = 64 + (i % 7) * 8;
  const h = 48 + (i % 5) * 8;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="hsl(${(i * 37) % 360},70%,50%)"/><circle cx="${i % w}" cy="${(i * 3) % h}" r="${8 + (i % 9)}" fill="hsl(${(i * 91) % 360},80%,60%)"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toBuffer();
}

export interface PipelineBench {
  images: number;
  cluster: {
    workers: number;
    wallMs: { median: number; runs: number[] };
    /** Median of each phase over the runs (see BatchSummary.phases): where the wall time goes. */
    phasesMs: BatchSummary['phases'];
    imagesPerSecond: number;
    perNode: Record<string, number>;
  };
  singleProcess: { wallMs: { median: number; runs: number[] }; imagesPerSecond: number };
  /** Cluster images/s divided by single-process images/s; the target is at least 0.8. */
  ratio: number;
  small: { images: number; converted: number; failed: number; verifiedGrayscale: number; wallMs: number; imagesPerSecond: number };
}

export async function benchPipeline(home: string, runs: number): Promise<PipelineBench> {
  process.env.SLURMKIT_HOME = home;
  const name = 'benchlab';
  const text = await templateText('lab');
  const state = await up({ config: parseSpec(text, 'template lab', { name }), specText: text });
  try {
    const storage = await storageFor(name);
    await storage.mk('input');
    await storage.mk('output');
    const images = await photos(49);
    const dir = join(home, 'single-in');
    const out = join(home, 'single-out');
    await mkdir(dir, { recursive: true });
    await mkdir(out, { recursive: true });
    for (const img of images) {
      await writeFile(join(dir, img.name), img.data);
      await storage.putData('input', img.name, img.data, { metadata: {}, contentType: 'image/jpeg' });
    }
    await writeFile(join(home, 'single.mjs'), SINGLE_PROCESS);
    const clusterRuns: number[] = [];
    const singleRuns: number[] = [];
    const phases: BatchSummary['phases'][] = [];
    let perNode: Record<string, number> = {};
    for (let r = 1; r <= runs; r++) {
      const s = await runBatch({ cluster: name, input: 'input', output: 'output', mode: { builtin: 'grayscale' }, storage, force: true });
      if (s.converted !== images.length) throw new Error(`pipeline converted ${s.converted} of ${images.length}`);
      clusterRuns.push(s.wallMs);
      phases.push(s.phases);
      perNode = s.perNode;
      singleRuns.push(await timeProcess([join(home, 'single.mjs'), dir, out], process.cwd()));
      log(`bench: pipeline round ${r}: cluster ${s.wallMs} ms (until the first task ran ${s.phases.queueMs} ms), single process ${singleRuns.at(-1)} ms`);
    }
    const clusterIps = (images.length / median(clusterRuns)) * 1000;
    const singleIps = (images.length / median(singleRuns)) * 1000;

    log('bench: 1,000 small images');
    await storage.mk('small');
    await storage.mk('small-out');
    const small = await Promise.all(Array.from({ length: 1000 }, (_, i) => smallImage(i)));
    for (let i = 0; i < small.length; i += 50) {
      await Promise.all(small.slice(i, i + 50).map((data, k) => storage.putData('small', `s${String(i + k).padStart(4, '0')}.jpg`, data, { metadata: {}, contentType: 'image/jpeg' })));
    }
    const s = await runBatch({ cluster: name, input: 'small', output: 'small-out', mode: { builtin: 'grayscale' }, storage });
    const outs = await storage.list('small-out');
    let verified = 0;
    for (const b of outs.filter((_, i) => i % 50 === 0)) if (await isGrayscale(await storage.getData('small-out', b.name))) verified++;
    return {
      images: images.length,
      cluster: {
        workers: state.nodes.length - 1,
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
      small: {
        images: small.length,
        converted: s.converted,
        failed: s.failed.length,
        verifiedGrayscale: verified,
        wallMs: s.wallMs,
        imagesPerSecond: s.imagesPerSecond,
      },
    };
  } finally {
    await down(name, { force: true }).catch(() => undefined);
  }
}
