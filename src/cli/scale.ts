/** Live scaling verbs: add-node, terminate-node, remove-node, resize (the application layer's, src/app/clusters.ts). */
import type { Command } from 'commander';
import { SlurmkitError } from '../util/errors.js';
import { Progress, formatMs } from '../util/progress.js';
import { addNodes, removeNodes, resize, terminateNodes } from '../app/clusters.js';
import { print, seconds } from './table.js';

/** A whole number from a flag, or USAGE naming the flag. */
function count(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new SlurmkitError('USAGE', `${flag} must be a whole number, ${min} or more, got "${value}"`, { hint: `for example ${flag} 2` });
  }
  return n;
}


export function registerScaleCommands(program: Command): void {
  program
    .command('add-node')
    .description('add workers to a running cluster: they join Slurm and take jobs, nothing restarts')
    .argument('<name>')
    .option('-g, --group <group>', 'node group of the new nodes (may be left out when the cluster has one)')
    .option('-c, --count <n>', 'how many nodes', '1')
    .option('--timeout <seconds>', 'how long to wait for the new nodes to be idle', '60')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts) => {
      const n = count(opts.count, '--count', 1);
      const readyTimeoutMs = seconds(opts.timeout, '--timeout') * 1000;
      const progress = Progress.stderr();
      const t0 = performance.now();
      const r = await addNodes(name, { ...(opts.group ? { group: opts.group } : {}), count: n, progress, readyTimeoutMs });
      const ms = Math.round(performance.now() - t0);
      print(opts.json, { name, added: r.nodes, totalMs: ms, timings: r.state.timings }, () => `Added ${r.nodes.join(', ')} to ${name} in ${formatMs(ms)}: idle in Slurm.`);
    });

  program
    .command('terminate-node')
    .description("drain workers, wait for their jobs to end, then remove them (--force: requeue their jobs and remove them now)")
    .argument('<name>')
    .argument('<node...>', 'node names or hostlists, e.g. c3 or c[3-4]')
    .option('--force', 'requeue the jobs on them instead of waiting')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, nodes: string[], opts) => {
      const progress = Progress.stderr();
      const t0 = performance.now();
      const r = await terminateNodes(name, nodes, { force: Boolean(opts.force), progress });
      const ms = Math.round(performance.now() - t0);
      print(opts.json, { name, removed: r.nodes, requeued: r.requeued ?? [], totalMs: ms }, () =>
        `Removed ${r.nodes.join(', ')} from ${name} in ${formatMs(ms)}${r.requeued ? `; requeued job(s) ${r.requeued.join(', ')}` : ''}.`,
      );
    });

  program
    .command('remove-node')
    .description('forget workers whose machine is already gone (in Slurm and in slurmkit)')
    .argument('<name>')
    .argument('<node...>', 'node names or hostlists')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, nodes: string[], opts) => {
      const r = await removeNodes(name, nodes, { progress: Progress.stderr() });
      print(opts.json, { name, removed: r.nodes }, () => `Forgot ${r.nodes.join(', ')} of ${name}.`);
    });

  program
    .command('resize')
    .description('bring a node group to a number of workers: adds nodes, or removes idle ones first, then the least busy')
    .argument('<name>')
    .option('-g, --group <group>', 'node group (may be left out when the cluster has one)')
    .requiredOption('-c, --count <n>', 'how many workers the group should have')
    .option('--force', 'requeue the jobs of the nodes removed instead of waiting')
    .option('--timeout <seconds>', 'how long to wait for new nodes to be idle', '60')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts) => {
      const n = count(opts.count, '--count', 0);
      const readyTimeoutMs = seconds(opts.timeout, '--timeout') * 1000;
      const progress = Progress.stderr();
      const t0 = performance.now();
      const r = await resize(name, { ...(opts.group ? { group: opts.group } : {}), count: n, force: Boolean(opts.force), progress, readyTimeoutMs });
      const ms = Math.round(performance.now() - t0);
      const what = r.change > 0 ? `added ${r.nodes.join(', ')}` : r.change < 0 ? `removed ${r.nodes.join(', ')}` : 'nothing to do';
      print(opts.json, { name, change: r.change, nodes: r.nodes, requeued: r.requeued ?? [], totalMs: ms }, () => `Resized ${name}: ${what} (${formatMs(ms)}).`);
    });
}
