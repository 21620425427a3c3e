import { resolve } from 'node:path';
import { loadSpecFile, parseYaml, readSpecText } from '../spec/load.js';
import { Progress, formatMs } from '../util/progress.js';
import { labDemo, DEMO_IMAGES } from '../app/demo.js';
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
  const provider = opts.file ? await providerOfSpec(opts.file) : opts.provider;
  const reporter = batchProgressReporter();
  const out = resolve(opts.out);
  const { result, found, totalMs, putBack } = await labDemo({
    keep: opts.keep,
    force: opts.force,
    downloadTo: out,
    progress,
    ...(provider ? { provider } : {}),
    onBatchProgress: reporter.update,
  }).finally(() => reporter.stop());
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
    await putBack();
    process.stderr.write('Cluster lab is stopped again, as it was. Keep it up next time with: slurmkit demo --keep\n');
  } else {
    await putBack();
    process.stderr.write('Cluster lab removed. Keep it up next time with: slurmkit demo --keep\n');
  }
}
