/**
 * A course cluster (the `course` template): the login node's cost in `up` (the same spec
 * without `login` as reference) and the round trip of `run(fn)` from the login node, next to
 * the time from `sbatch` to a job's line on the same partition, one job after another as
 * run(fn) goes (Slurm starts a job submitted right after another ended about a second later).
 * On the local provider, and on docker (an engine of the bench's own) where dockerd is installed.
 */
import { down, up } from '../app/clusters.js';
import { templateText } from '../spec/templates.js';
import { parseSpec } from '../spec/load.js';
import { onTestEngine } from '../testing/dockerd.js';
import { Progress } from '../util/progress.js';
import { PYTHON_MODULES } from '../cluster/layout.js';
import { providerFor, labelOf } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';
import { firstLineLoop, firstLineMs, log, median } from './run.js';

export interface CourseRun {
  upMs: { withLogin: number; withoutLogin: number };
  loginAddsMs: number;
  loginPhasesMs: Record<string, number>;
  calls: number;
  runFnMs: number;
  /** The reference: sbatch to the job's line, each job submitted once the one before left the queue (as run(fn) goes). */
  sbatchToLineMs: number;
}

export interface CourseBench extends CourseRun {
  /** The same on the docker provider (the node image already in the engine); null without dockerd. */
  docker: CourseRun | null;
}

async function onLogin(state: ClusterState, script: string): Promise<string> {
  const r = await providerFor(state).exec({ label: labelOf(state), node: 'login', command: ['bash', '-c', script], stdio: 'capture', cwd: '/' });
  if (r.exitCode !== 0) throw new Error(`on login: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

export async function benchCourse(home: string, runs: number): Promise<CourseBench> {
  process.env.SLURMKIT_HOME = home;
  const local = await courseOn('local', runs);
  const docker = await onTestEngine(async () => {
    // The node image into the engine first: its import is not the login node's cost.
    await courseOn('docker', 1, { warmUp: true });
    return courseOn('docker', runs);
  });
  return { ...local, docker };
}

async function courseOn(provider: 'local' | 'docker', runs: number, opts: { warmUp?: boolean } = {}): Promise<CourseRun> {
  const withLogin: number[] = [];
  const withoutLogin: number[] = [];
  const phases: Record<string, number[]> = {};
  let calls: number[] = [];
  let firstLines: number[] = [];
  for (let r = 0; r < runs; r++) {
    for (const login of [false, true]) {
      const name = login ? 'benchcourse' : 'benchnologin';
      const text = (await templateText('course', { name })).replace(/^login:\n(  .*\n)+/m, login ? '$&' : '').replace(/^provider: local$/m, `provider: ${provider}`);
      const config = parseSpec(text, 'course');
      const progress = Progress.silent();
      const t0 = performance.now();
      const state = await up({ config, specText: text, progress });
      (login ? withLogin : withoutLogin).push(performance.now() - t0);
      try {
        if (!login || opts.warmUp) continue;
        for (const t of progress.timings.filter((p) => /login|Jupyter/.test(p.phase))) (phases[t.phase] ??= []).push(t.ms);
        const n = Number(process.env.BENCH_COURSE_CALLS ?? 10);
        const py = [
          'import time',
          'from slurmkit_run import run',
          'run(abs, -1)',
          `for _ in range(${n}):`,
          '    t = time.perf_counter(); assert run(abs, -2) == 2; print((time.perf_counter() - t) * 1000)',
        ].join('\n');
        calls = calls.concat((await onLogin(state, `cd /home/alice && PYTHONPATH=${PYTHON_MODULES} runuser -u alice -- /usr/bin/python3 -c '${py}'`)).trim().split('\n').map(Number));
        // As run(fn) goes: the next job only once the one before has left the queue.
        firstLines = firstLines.concat(firstLineMs(await onLogin(state, firstLineLoop(n, { oneAtATime: true }))));
      } finally {
        await down(state.name, { force: true });
      }
    }
  }
  const w = Math.round(median(withLogin));
  const wo = Math.round(median(withoutLogin));
  const result: CourseRun = {
    upMs: { withLogin: w, withoutLogin: wo },
    loginAddsMs: w - wo,
    loginPhasesMs: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(median(v))])),
    calls: calls.length,
    runFnMs: Math.round(median(calls)),
    sbatchToLineMs: Math.round(median(firstLines)),
  };
  if (!opts.warmUp) log(`bench: course: ${provider}: up ${wo} ms without the login node, ${w} ms with it; run(fn) ${result.runFnMs} ms, sbatch to the job's line ${result.sbatchToLineMs} ms`);
  return result;
}
