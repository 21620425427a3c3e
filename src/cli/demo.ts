import { parseSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, labelOf, providerFor, start, up } from '../cluster/lifecycle.js';
import { readState } from '../cluster/state.js';
import { SlurmkitError } from '../util/errors.js';
import { Progress, formatMs } from '../util/progress.js';

/**
 * The README's main job: the lab cluster (1 head + 8 workers) running one job on every
 * worker. Reuses a running lab, starts a stopped one.
 */
export async function runDemo(opts: { keep: boolean }): Promise<void> {
  const progress = Progress.stderr();
  const t0 = performance.now();
  let state = await readState('lab');
  if (!state) {
    progress.info('Creating cluster lab: 1 head + 8 workers');
    const text = await templateText('lab');
    state = await up({ config: parseSpec(text, 'template lab', {}), specText: text, progress });
  } else if (state.phase !== 'running') {
    progress.info('Starting cluster lab');
    state = await start('lab', progress);
  } else {
    progress.info('Cluster lab is already running');
  }
  const workers = state.nodes.filter((n) => n.role === 'worker').length;
  const cmd = ['srun', `-N${workers}`, '--label', 'hostname'];
  const r = await progress.phase(`srun -N${workers} hostname`, () =>
    providerFor(state!).exec({ label: labelOf(state!), node: 'head', command: cmd, stdio: 'capture' }),
  );
  if (r.exitCode !== 0) {
    throw new SlurmkitError('COMMAND_FAILED', `${cmd.join(' ')} exited with ${r.exitCode}: ${r.stderr.trim()}`, {
      hint: 'see: slurmkit logs lab',
    });
  }
  const hosts = r.stdout.trim().split('\n').sort((a, b) => Number(a.split(':')[0]) - Number(b.split(':')[0]));
  process.stdout.write(`${hosts.join('\n')}\n`);
  const distinct = new Set(hosts.map((l) => l.split(':').pop()!.trim())).size;
  process.stdout.write(`\n${distinct} distinct hosts answered, ${formatMs(Math.round(performance.now() - t0))} in all.\n`);
  if (opts.keep) {
    process.stdout.write('The cluster is still up:\n  slurmkit exec lab -- sinfo\n  slurmkit shell lab\n  slurmkit down lab\n');
  } else {
    await down('lab', { progress });
    process.stdout.write('Cluster lab removed. Keep it next time with: slurmkit demo --keep\n');
  }
}
