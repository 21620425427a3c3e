/**
 * The generic blob batch runner: lists the input container, submits one Slurm job array
 * spread over the workers, follows per-blob status files, retries what a killed task left
 * undone, and reports each blob exactly once.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInHead } from '../cluster/nodes.js';
import { requireState } from '../cluster/state.js';
import { SlurmkitError } from '../util/errors.js';
import { checkContainerName } from '../storage/names.js';
import { shellQuote } from '../util/run.js';
import { batchFolder } from './folder.js';
import {
  attemptPath,
  claimDir,
  etagTag,
  logDir,
  manifestPath,
  SOURCE_KEY,
  statusPath,
  type Attempt,
  type BatchBlob,
  type BatchMode,
  type BlobStatus,
  type Manifest,
} from './manifest.js';

/** What the runner needs from blob storage (see src/storage). */
export interface BatchStorage {
  /** Path of the root-only file with the connection string, readable from every node. */
  connectionStringFile: string;
  /** Blobs of a container; rejects NOT_FOUND for a missing container. */
  /**
   * A URL that grants one blob's read ('r') or create-and-write ('cw') for a while. With it,
   * tasks need neither the account key nor the Azure SDK (which costs each task ~0.4 s of CPU).
   */
  signedUrl?(container: string, blob: string, permissions: 'r' | 'cw', expiresInSeconds: number): Promise<string>;
  list(container: string): Promise<{ name: string; etag: string; size: number; contentType?: string | undefined; metadata: Record<string, string> }[]>;
}

export interface BatchOptions {
  cluster: string;
  input: string;
  output: string;
  mode: BatchMode;
  storage: BatchStorage;
  /** Reconvert blobs whose output is up to date. */
  force?: boolean;
  /** Array tasks; default: one per worker CPU, at most one per blob. */
  tasks?: number;
  /** Submissions in all, the first included, before a blob counts as failed. */
  maxAttempts?: number;
  onProgress?: (p: BatchProgress) => void;
  /** Aborting cancels the Slurm job and rejects. */
  signal?: AbortSignal;
  /** Give up after this long: cancel the job, keep the finished blobs, reject with TIMEOUT. */
  timeoutMs?: number;
}

export interface BatchProgress {
  total: number;
  done: number;
  failed: number;
  attempt: number;
  jobId: string;
  perNode: Record<string, number>;
  /** Slurm's reason while array tasks wait in the queue (e.g. ReqNodeNotAvail when every worker is drained). */
  pending?: string;
}

export interface BatchSummary {
  batchId: string;
  cluster: string;
  input: string;
  output: string;
  total: number;
  converted: number;
  skipped: number;
  failed: { blob: string; reason: string }[];
  perNode: Record<string, number>;
  attempts: number;
  jobIds: string[];
  wallMs: number;
  /**
   * Where the wall time went: listing, signing and submitting; waiting in Slurm's queue until
   * the first task started; tasks running (first start to last blob); and collecting results.
   */
  phases: { prepareMs: number; queueMs: number; runMs: number; collectMs: number };
  imagesPerSecond: number;
}

const TASK_SCRIPT = fileURLToPath(new URL('./task.js', import.meta.url));
/** The jobs' connection string in a batch folder, for tasks without signed URLs. */
const CONNECTION_STRING = 'connection-string';

function countPerNode(statuses: Iterable<BlobStatus>): Record<string, number> {
  const perNode: Record<string, number> = {};
  for (const s of statuses) if (s.state === 'done') perNode[s.node] = (perNode[s.node] ?? 0) + 1;
  return Object.fromEntries(Object.entries(perNode).sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true })));
}

function phasesOf(startedAt: number, submittedAt: number, endedAt: number, statuses: Iterable<BlobStatus>): BatchSummary['phases'] {
  const all = [...statuses];
  const starts = all.flatMap((s) => (s.taskStartedAt === undefined ? [] : [s.taskStartedAt]));
  const ends = all.flatMap((s) => (s.finishedAt === undefined ? [] : [s.finishedAt]));
  // Tasks may run on machines whose clocks differ a little: keep every phase inside the wall time.
  const within = (t: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, t));
  const firstTask = within(starts.length ? Math.min(...starts) : submittedAt, submittedAt, endedAt);
  const lastBlob = within(ends.length ? Math.max(...ends) : firstTask, firstTask, endedAt);
  const ms = (x: number) => Math.round(x);
  return { prepareMs: ms(submittedAt - startedAt), queueMs: ms(firstTask - submittedAt), runMs: ms(lastBlob - firstTask), collectMs: ms(endedAt - lastBlob) };
}

export async function runBatch(opts: BatchOptions): Promise<BatchSummary> {
  const t0 = performance.now();
  checkContainerName(opts.input, '--input');
  checkContainerName(opts.output, '--output');
  if (opts.input === opts.output) {
    throw new SlurmkitError('USAGE', '--input and --output name the same container', { hint: 'write results to another container, e.g. --output output' });
  }
  if ('command' in opts.mode && opts.mode.command.length === 0) {
    throw new SlurmkitError('USAGE', 'no command given after --', { hint: 'e.g. slurmkit batch lab --input in --output out -- ./convert.sh' });
  }
  const state = await requireState(opts.cluster);
  if (state.phase !== 'running') {
    throw new SlurmkitError('CONFLICT', `cluster ${opts.cluster} is ${state.phase}`, { hint: `start it: slurmkit start ${opts.cluster}` });
  }
  // Both containers are checked before anything is submitted, so a typo changes nothing.
  const [inputs, outputs] = await Promise.all([opts.storage.list(opts.input), opts.storage.list(opts.output)]);
  const upToDate = new Map(outputs.map((b) => [b.name, b.metadata[SOURCE_KEY]]));
  const todo: BatchBlob[] = [];
  let skipped = 0;
  inputs.forEach((b) => {
    if (!opts.force && upToDate.get(b.name) === etagTag(b.etag)) skipped++;
    else todo.push({ index: todo.length, name: b.name, etag: b.etag, size: b.size, ...(b.contentType ? { contentType: b.contentType } : {}) });
  });

  const batchId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(2).toString('hex')}`;
  const summary: BatchSummary = {
    batchId,
    cluster: opts.cluster,
    input: opts.input,
    output: opts.output,
    total: inputs.length,
    converted: 0,
    skipped,
    failed: [],
    perNode: {},
    attempts: 0,
    jobIds: [],
    wallMs: 0,
    phases: { prepareMs: 0, queueMs: 0, runMs: 0, collectMs: 0 },
    imagesPerSecond: 0,
  };
  if (todo.length === 0) {
    summary.wallMs = Math.round(performance.now() - t0);
    return summary;
  }

  const folder = batchFolder(state, batchId);
  const dir = folder.inNodes;
  await folder.mkdirs('status', 'logs');
  const sign = opts.storage.signedUrl?.bind(opts.storage);
  if (sign) {
    const day = 24 * 3600;
    for (const b of todo) {
      b.getUrl = await sign(opts.input, b.name, 'r', day);
      b.putUrl = await sign(opts.output, b.name, 'cw', day);
    }
  }
  // Without signed URLs, tasks use the jobs' connection string: a copy in the batch folder (root's only).
  if (!sign) await folder.write(CONNECTION_STRING, await readFile(opts.storage.connectionStringFile, 'utf8'));
  const manifest: Manifest = {
    batchId,
    cluster: opts.cluster,
    input: opts.input,
    output: opts.output,
    mode: opts.mode,
    connectionStringFile: join(dir, CONNECTION_STRING),
    blobs: todo,
  };
  await folder.writeJson(relative(dir, manifestPath(dir)), manifest);

  const workerCpus = state.nodes.filter((n) => n.role === 'worker').length;
  const maxAttempts = opts.maxAttempts ?? 3;
  const startedAt = Date.now() - Math.round(performance.now() - t0);
  let submittedAt = startedAt;
  const statuses = new Map<number, BlobStatus>();
  const refresh = async () => {
    for (const s of await folder.newStatuses(new Set(statuses.keys()))) statuses.set(s.index, s);
  };
  try {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      // A blob is retried when no task reported on it (its task died) or its storage I/O failed.
      const pending = todo.filter((b) => {
        const s = statuses.get(b.index);
        return !s || (s.state === 'failed' && s.retryable && attempt > 1);
      });
      if (pending.length === 0) break;
      // A blob tried again loses its status first.
      for (const b of pending) {
        if (!statuses.has(b.index)) continue;
        statuses.delete(b.index);
        await folder.remove(relative(dir, statusPath(dir, b.index)));
      }
      const tasks = Math.max(1, Math.min(pending.length, opts.tasks ?? workerCpus));
      // Largest first, so that no big image is left for the end while the other tasks idle.
      const indices = [...pending].sort((a, b) => b.size - a.size || a.index - b.index).map((b) => b.index);
      const plan: Attempt = { attempt, tasks, indices };
      await folder.mkdirs(relative(dir, claimDir(dir, attempt)));
      await folder.writeJson(relative(dir, attemptPath(dir, attempt)), plan);
      const taskCmd = [process.execPath, TASK_SCRIPT, dir, String(attempt), '$SLURM_ARRAY_TASK_ID'].map((a) => (a.startsWith('$') ? `"${a}"` : shellQuote(a))).join(' ');
      const sbatch = [
        'sbatch --parsable --requeue',
        `--job-name=${shellQuote(`batch-${batchId}`)}`,
        `--array=0-${tasks - 1}`,
        '--ntasks=1 --cpus-per-task=1',
        `--output=${shellQuote(join(logDir(dir), `attempt${attempt}-task%a.log`))}`,
        `--wrap=${shellQuote(`exec ${taskCmd}`)}`,
      ].join(' ');
      const jobId = (await runInHead(state, sbatch)).trim().split(';')[0]!;
      if (attempt === 1) submittedAt = Date.now();
      plan.jobId = jobId;
      await folder.writeJson(relative(dir, attemptPath(dir, attempt)), plan);
      summary.jobIds.push(jobId);
      summary.attempts = attempt;

      let lastQueueCheck = 0;
      let waitingFor: string | undefined;
      const report = () =>
        opts.onProgress?.({
          total: todo.length,
          done: [...statuses.values()].filter((s) => s.state === 'done').length,
          failed: [...statuses.values()].filter((s) => s.state === 'failed').length,
          attempt,
          jobId,
          perNode: countPerNode(statuses.values()),
          ...(waitingFor ? { pending: waitingFor } : {}),
        });
      for (;;) {
        if (opts.signal?.aborted) {
          await runInHead(state, `scancel ${jobId}`).catch(() => undefined);
          throw new SlurmkitError('INTERRUPTED', `batch ${batchId} interrupted; job ${jobId} was cancelled, finished blobs are kept`, {
            hint: 'run the same command again to convert the rest',
          });
        }
        if (opts.timeoutMs !== undefined && performance.now() - t0 > opts.timeoutMs) {
          await runInHead(state, `scancel ${jobId}`).catch(() => undefined);
          throw new SlurmkitError('TIMEOUT', `batch ${batchId} did not finish within ${Math.round(opts.timeoutMs / 1000)} s; job ${jobId} was cancelled, finished blobs are kept`, {
            hint: waitingFor
              ? `its tasks were still waiting in the queue (${waitingFor}): check the workers with slurmkit exec ${opts.cluster} -- sinfo -R`
              : 'run the same command again to convert the rest, or give more time with --timeout',
          });
        }
        await refresh();
        report();
        if (plan.indices.every((i) => statuses.has(i))) break;
        if (Date.now() - lastQueueCheck > 1000) {
          lastQueueCheck = Date.now();
          // Gone only when squeue says so: a controller that does not answer is no finished job.
          const q = await runInHead(state, `squeue -h -r -j ${jobId} -o '%i|%T|%r' 2>&1; echo "exit=$?"`);
          const listed = /exit=0\s*$/.test(q) ? q.replace(/exit=0\s*$/, '').trim() : undefined;
          const gone = listed !== undefined ? listed === '' : /Invalid job id/i.test(q);
          // Tasks that cannot start say why; shown while no task of this attempt has started.
          const waiting = (listed ?? '').split('\n').map((l) => l.split('|')).filter((f) => f[1] === 'PENDING');
          const started = [...statuses.values()].some((s) => s.attempt === attempt);
          waitingFor = waiting.length > 0 && !started ? `${waiting.length} task(s) pending: ${waiting[0]![2] ?? 'unknown reason'}` : undefined;
          if (gone) {
            // The array is gone from the queue: read the statuses once more (and report them), then retry what is missing.
            await refresh();
            report();
            break;
          }
        }
        // A task writing a status wakes the loop at once; the queue is still checked every second.
        await folder.next(1005 - Math.min(1000, Date.now() - lastQueueCheck), opts.signal);
      }
    }
  } finally {
    folder.close();
  }

  for (const b of todo) {
    const s = statuses.get(b.index);
    if (s?.state === 'done') summary.converted++;
    else summary.failed.push({ blob: b.name, reason: s?.reason ?? `no task finished it in ${summary.attempts} attempt(s); see the task logs in ${folder.where.replace(dir, logDir(dir))}` });
  }
  summary.perNode = countPerNode(statuses.values());
  summary.wallMs = Math.round(performance.now() - t0);
  summary.phases = phasesOf(startedAt, submittedAt, startedAt + summary.wallMs, statuses.values());
  summary.imagesPerSecond = summary.wallMs > 0 ? Math.round((summary.converted / summary.wallMs) * 1000 * 100) / 100 : 0;
  await folder.writeJson('summary.json', summary);
  return summary;
}
