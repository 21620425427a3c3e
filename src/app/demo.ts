/**
 * The demo as use cases: on a running cluster (the server's demo button), and the README's main
 * job (`slurmkit demo`), which brings up the lab cluster and puts back what it found.
 */
import { readState } from '../cluster/state.js';
import { runImageDemo, type DemoResult } from '../jobs/demo.js';
import type { BatchProgress } from '../jobs/batch.js';
import { storageFor } from '../jobs/storage.js';
import type { Progress } from '../util/progress.js';
import { down, start, stop, up } from './clusters.js';

export { DEMO_IMAGES, type DemoResult } from '../jobs/demo.js';

/** 49 colour photos into `input`, grayscale into `output` over the workers, each output verified. */
export async function demoOn(cluster: string, progress: Progress, opts: { force?: boolean; downloadTo?: string; onBatchProgress?: (p: BatchProgress) => void } = {}): Promise<DemoResult> {
  const storage = await progress.phase('blob storage', () => storageFor(cluster));
  return runImageDemo({
    cluster,
    storage,
    progress,
    ...(opts.force ? { force: true } : {}),
    ...(opts.downloadTo ? { downloadTo: opts.downloadTo } : {}),
    onBatchProgress: (p) => {
      progress.count('photos', p.done, p.total, p.failed);
      opts.onBatchProgress?.(p);
    },
    ...(progress.signal ? { signal: progress.signal } : {}),
  });
}

export type Found = 'none' | 'stopped' | 'running';

/**
 * The README's main job on the lab cluster: reuses a running lab, starts a stopped one, makes
 * one when there is none; afterwards removes a lab it made and stops one it started, unless
 * `keep`, and leaves a running one (and the user's files in it) alone.
 */
export async function labDemo(opts: {
  keep: boolean;
  force: boolean;
  downloadTo: string;
  progress: Progress;
  /** A provider name, or a swarm's provider mapping from a spec file. */
  provider?: string | Record<string, unknown>;
  onBatchProgress?: (p: BatchProgress) => void;
}): Promise<{ result: DemoResult; found: Found; totalMs: number; putBack: () => Promise<void> }> {
  const { progress } = opts;
  const t0 = performance.now();
  let state = await readState('lab');
  const found: Found = !state ? 'none' : state.phase === 'running' ? 'running' : 'stopped';
  if (!state) {
    const kind = typeof opts.provider === 'string' ? opts.provider : opts.provider?.['type'];
    progress.info(`Creating cluster lab: 1 head + 8 workers${kind ? ` (provider ${String(kind)})` : ''}`);
    const [{ templateText }, { parseSpec }] = await Promise.all([import('../spec/templates.js'), import('../spec/load.js')]);
    const text = await templateText('lab');
    state = await up({ config: parseSpec(text, 'template lab', opts.provider ? { provider: opts.provider } : {}), specText: text, progress });
  } else if (state.phase !== 'running') {
    progress.info('Starting cluster lab');
    state = await start('lab', progress);
  } else {
    progress.info('Cluster lab is already running');
  }
  const result = await demoOn('lab', progress, { force: opts.force, downloadTo: opts.downloadTo, ...(opts.onBatchProgress ? { onBatchProgress: opts.onBatchProgress } : {}) });
  const totalMs = Math.round(performance.now() - t0);
  // Called by the caller once it has shown the result.
  const putBack = async () => {
    if (!opts.keep && found === 'stopped') await stop('lab', progress);
    else if (!opts.keep && found === 'none') await down('lab', { progress });
  };
  return { result, found, totalMs, putBack };
}
