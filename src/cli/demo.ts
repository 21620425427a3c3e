import { resolve } from 'node:path';
import { loadSpecFile, parseSpec, parseYaml, readSpecText } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, start, stop, up } from '../app/clusters.js';
import { readState } from '../cluster/state.js';
import { Progress, formatMs } from '../util/progress.js';
import { storageFor } from '../jobs/storage.js';
import { runImageDemo, DEMO_IMAGES } from '../jobs/demo.js';
import { batchProgressReporter, formatSummary } from './batch.js';

/** The provider mapping of a spec file (a swarm's hosts, say), checked with the whole file. */
async function providerOfSpec(file: string): Promise<string | Record<string, unknown>> {
  await loadSpecFile(file);
  const raw = parseYaml(await readSpecText(file), file) as { provider?: string | Record<string, unknown> };
  return raw.provider ?? 'local';
}

/**
 * The README's main job: the lab cluster (1 head + 8 workers) turns 49 colour photos in
 * blob container `input` into grayscale in `output`. Reuses a running lab, starts a stopped one.
 */
export async function runDemo(opts: { keep: boolean; out: string; force: boolean; json: boolean; provider?: string; file?: string }): Promise<void> {
  const progress = Progress.stderr();
  const t0 = performance.now();
  let state = await readState('lab');
  // The demo puts back what it found: it removes a lab it made, stops one it started, and
  // leaves a running one (and the user's files in it) alone.
  const found: 'none' | 'stopped' | 'running' = !state ? 'none' : state.phase === 'running' ? 'running' : 'stopped';
  if (!state) {
    const provider = opts.file ? await providerOfSpec(opts.file) : opts.provider;
    const kind = typeof provider === 'string' ? provider : provider?.['type'];
    progress.info(`Creating cluster lab: 1 head + 8 workers${kind ? ` (provider ${String(kind)})` : ''}`);
    const text = await templateText('lab');
    state = await up({ config: parseSpec(text, 'template lab', provider ? { provider } : {}), specText: text, progress });
  } else if (state.phase !== 'running') {
    progress.info('Starting cluster lab');
    state = await start('lab', progress);
  } else {
    progress.info('Cluster lab is already running');
  }
  const storage = await progress.phase('blob storage (Azurite in the head node)', () => storageFor('lab'));
  const reporter = batchProgressReporter();
  const out = resolve(opts.out);
  const result = await runImageDemo({ cluster: 'lab', storage, progress, force: opts.force, onBatchProgress: reporter.update, downloadTo: out, ...(progress.signal ? { signal: progress.signal } : {}) }).finally(
    () => reporter.stop(),
  );
  const totalMs = Math.round(performance.now() - t0);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ...result, totalMs, kept: opts.keep }, null, 2)}\n`);
  } else {
    process.stdout.write(
      [
        formatSummary(result.batch),
        `Verified: ${result.verified}/${DEMO_IMAGES} outputs exist, keep their size and format, and are grayscale.`,
        `The results are in ${out} (open any of them in an image viewer). ${formatMs(totalMs)} in all.`,
        '',
      ].join('\n'),
    );
  }
  if (opts.keep || found === 'running') {
    process.stderr.write(
      [
        'The cluster is still up. Try:',
        '  slurmkit blob lab ls output            # the grayscale blobs',
        '  slurmkit blob lab get output -o ./output',
        '  slurmkit exec lab -- sacct || slurmkit exec lab -- squeue',
        '  slurmkit down lab                      # when done',
        '',
      ].join('\n'),
    );
  } else if (found === 'stopped') {
    await stop('lab', progress);
    process.stderr.write('Cluster lab is stopped again, as it was. Keep it up next time with: slurmkit demo --keep\n');
  } else {
    await down('lab', { progress });
    process.stderr.write('Cluster lab removed. Keep it up next time with: slurmkit demo --keep\n');
  }
}
