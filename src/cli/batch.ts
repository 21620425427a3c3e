import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { SlurmkitError } from '../util/errors.js';
import { Progress, formatMs } from '../util/progress.js';
import type { BatchProgress, BatchSummary } from '../jobs/batch.js';

/** A live bar on a terminal; on a pipe, a line every few seconds so logs show progress too. */
export function batchProgressReporter(): { update: (p: BatchProgress) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: '  {bar} {value}/{total} blobs | failed {failed} | job {jobId} | {nodes}', hideCursor: true, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update: (p) => {
        const payload = { failed: p.failed, jobId: p.jobId, nodes: p.pending ?? Object.entries(p.perNode).map(([n, c]) => `${n}:${c}`).join(' ') };
        if (!started) {
          bar.start(p.total, p.done, payload);
          started = true;
        }
        bar.setTotal(p.total);
        bar.update(p.done + p.failed, payload);
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = 0;
  let lastLine = '';
  return {
    update: (p) => {
      const line = `  ${p.done + p.failed}/${p.total} blobs (failed ${p.failed}), job ${p.jobId}${p.pending ? `; ${p.pending}` : ''}`;
      if (line !== lastLine && Date.now() - last > 2000) {
        process.stderr.write(`${line}\n`);
        last = Date.now();
        lastLine = line;
      }
    },
    stop: () => undefined,
  };
}

export function formatSummary(s: BatchSummary): string {
  const lines = [
    `Batch ${s.batchId}: ${s.input} -> ${s.output} on cluster ${s.cluster}`,
    `  converted ${s.converted}, skipped ${s.skipped} (already up to date), failed ${s.failed.length}, of ${s.total}`,
  ];
  if (s.converted > 0) {
    lines.push(`  wall time ${formatMs(s.wallMs)}, ${s.imagesPerSecond} blobs/s, ${s.attempts} submission(s), job(s) ${s.jobIds.join(', ')}`);
    const ph = s.phases;
    lines.push(`  time: ${formatMs(ph.prepareMs)} to list and submit, ${formatMs(ph.queueMs)} until the first task ran, ${formatMs(ph.runMs)} running tasks, ${formatMs(ph.collectMs)} to collect`);
    lines.push(`  per node: ${Object.entries(s.perNode).map(([n, c]) => `${n}=${c}`).join(' ')}`);
  }
  for (const f of s.failed) lines.push(`  FAILED ${f.blob}: ${f.reason}`);
  return lines.join('\n');
}

export function registerBatchCommands(program: Command): void {
  program
    .command('batch')
    .description('convert every blob of a container with a Slurm job array: --builtin grayscale, or -- CMD (gets input and output paths)')
    .argument('<name>', 'cluster')
    .argument('[command...]', 'command run per blob, with the input and output file paths appended (or put {in} and {out} where they go)')
    .requiredOption('--input <container>', 'container with the input blobs')
    .requiredOption('--output <container>', 'container for the results (same blob names)')
    .option('--builtin <converter>', 'built-in converter: grayscale')
    .option('--force', 'convert blobs whose output is already up to date')
    .option('--tasks <n>', 'array tasks (default: one per worker)')
    .option('--timeout <seconds>', 'give up after this long: cancel the job and keep the finished blobs (exit 7)')
    .option('--json', 'print the summary as JSON')
    .usage('<name> --input C --output C (--builtin grayscale | -- CMD...)')
    .action(async (name: string, command: string[], opts) => {
      if (opts.builtin && command.length > 0) throw new SlurmkitError('USAGE', 'give either --builtin or a command after --, not both');
      if (!opts.builtin && command.length === 0) {
        throw new SlurmkitError('USAGE', 'nothing to run: give --builtin grayscale or a command after --', {
          hint: `e.g. slurmkit batch ${name} --input input --output output --builtin grayscale`,
        });
      }
      if (opts.builtin && opts.builtin !== 'grayscale') {
        throw new SlurmkitError('USAGE', `--builtin ${opts.builtin} is not a built-in converter`, { hint: 'the built-in converter is: grayscale' });
      }
      const tasks = opts.tasks === undefined ? undefined : Number(opts.tasks);
      if (tasks !== undefined && (!Number.isInteger(tasks) || tasks < 1)) {
        throw new SlurmkitError('USAGE', `--tasks must be a whole number of at least 1, got "${opts.tasks}"`);
      }
      const timeout = opts.timeout === undefined ? undefined : Number(opts.timeout);
      if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0)) {
        throw new SlurmkitError('USAGE', `--timeout must be a number of seconds above 0, got "${opts.timeout}"`, { hint: 'e.g. --timeout 600' });
      }
      const { batch } = await import('../app/batch.js');
      const progress = Progress.stderr();
      const reporter = batchProgressReporter();
      try {
        const summary = await batch(
          name,
          {
            input: opts.input,
            output: opts.output,
            mode: opts.builtin ? { builtin: 'grayscale' } : { command },
            ...(opts.force ? { force: true } : {}),
            ...(tasks ? { tasks } : {}),
            ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
            onProgress: reporter.update,
          },
          progress,
        );
        reporter.stop();
        process.stdout.write(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
        if (summary.failed.length > 0) process.exitCode = 6;
      } finally {
        reporter.stop();
      }
    });
}
