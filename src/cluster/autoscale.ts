/**
 * Autoscaling on the queue through Slurm's own power saving. Nodes above a group's minNodes are
 * State=CLOUD in slurm.conf, at addresses planned at up (every node's /etc/hosts lists them from
 * the start). slurmctld, inside the head, calls slurmkit's ResumeProgram/SuspendProgram, which only
 * leave a request in a spool folder of the head; the cluster's agent, a process on this machine
 * started by `up` and stopped by `down`, reads the spool through the provider (the head gets no
 * new way out) and makes or removes nodes with the same provider calls as `up` and `down`.
 *
 * The agent reconciles rather than trusting requests alone: every pass it also reads Slurm's
 * power state of the planned nodes. A node Slurm powers up that does not exist is made (so a
 * request lost to a restart of slurmctld or of the agent is not lost); one Slurm powered down that
 * still exists is removed; one that failed to start is marked DOWN at once with the provider's
 * error (its job is requeued), removed, and powered down again so that later jobs can use it.
 */
import { compressHostlist, expandHostlist } from '../slurm/hostlist.js';
import { POWER_SPOOL } from '../slurm/render.js';
import { parseSinfoNodes, type NodeSlurmState } from '../slurm/status.js';
import { Progress } from '../util/progress.js';
import { sleep, waitFor } from '../util/run.js';
import { createInOrder } from './lifecycle.js';
import { labelOf, providerFor, runInHead } from './nodes.js';
import { readState, updateState, type ClusterState, type NodeRecord, type ScaleEvent } from './state.js';
import { DRAIN_TAG } from './scale.js';

/** How many scale events the state keeps. */
const EVENTS_KEPT = 50;

/** One request the power programs left: what, for which nodes, when, and (resume) for which jobs. */
export interface PowerRequest {
  action: 'resume' | 'suspend' | 'resume-fail';
  nodes: string[];
  at: number;
  jobs: string[];
}

/** Parses the head's answer to {@link passScript}: the requests, then sinfo's lines. */
export function parsePass(stdout: string): { requests: PowerRequest[]; nodes: NodeSlurmState[] } {
  const [before, sinfo = ''] = stdout.split('@@sinfo\n');
  const requests: PowerRequest[] = [];
  for (const chunk of (before ?? '').split('@@request ').slice(1)) {
    const nl = chunk.indexOf('\n');
    const file = chunk.slice(0, nl);
    const body = chunk.slice(nl + 1);
    const firstNl = body.indexOf('\n');
    const [action, hostlist] = (firstNl < 0 ? body : body.slice(0, firstNl)).trim().split(/\s+/);
    if ((action !== 'resume' && action !== 'suspend' && action !== 'resume-fail') || !hostlist) continue;
    let jobs: string[] = [];
    const json = firstNl < 0 ? '' : body.slice(firstNl + 1).trim();
    if (json) {
      try {
        const parsed = JSON.parse(json) as { jobs?: { job_id?: number }[] };
        jobs = (parsed.jobs ?? []).map((j) => String(j.job_id)).filter((j) => j !== 'undefined');
      } catch {
        // A resume file slurmkit cannot read costs the event its job phase, nothing else.
      }
    }
    let nodes: string[];
    try {
      nodes = expandHostlist(hostlist);
    } catch {
      continue;
    }
    requests.push({ action, nodes, at: Number(file.split('.')[0]) || Date.now(), jobs });
  }
  return { requests, nodes: parseSinfoNodes(sinfo) };
}

/**
 * One pass in the head: waits up to `waitTenths` tenths of a second for a request (a long poll:
 * an idle cluster costs one command in its head every few seconds, not several a second), then
 * takes the waiting requests (printed, then removed) and prints Slurm's view of the planned nodes.
 */
function passScript(cloud: string[], waitTenths: number): string {
  return [
    // Builtins only while waiting (compgen, and read timing out on a FIFO nobody writes): no process per tenth.
    ...(waitTenths > 0
      ? [
          'f=$(mktemp -u /tmp/slurmkit-agent.XXXXXX) && mkfifo -m 600 "$f" && exec 9<>"$f" && rm -f "$f"',
          `i=0; while [ $i -lt ${waitTenths} ] && ! compgen -G '${POWER_SPOOL}/new/*' >/dev/null; do read -r -t 0.1 -u 9; i=$((i+1)); done`,
        ]
      : []),
    `if cd ${POWER_SPOOL}/new 2>/dev/null; then for f in *; do [ -f "$f" ] || continue; echo "@@request $f"; cat "$f"; echo; rm -f "$f"; done; fi`,
    'echo @@sinfo',
    `sinfo -h -N -n ${compressHostlist(cloud)} -o '%N|%T|%E'`,
  ].join('\n');
}

/** How long a pass waits for a request when nothing is going on. */
const IDLE_WAIT_TENTHS = 50;

/** Why a node could not be made, as a Slurm reason: tagged as slurmkit's, on one line, without quotes. */
function failureReason(err: unknown): string {
  const text = (err as Error).message.replace(/\s+/g, ' ').replace(/['"\\]/g, '').slice(0, 150);
  return `${DRAIN_TAG} could not make node: ${text}`;
}

export interface AgentOptions {
  signal: AbortSignal;
  log?: (line: string) => void;
  /** Between passes; 250 ms unless a test says otherwise. */
  intervalMs?: number;
}

/**
 * The agent's loop, until the signal fires or the cluster is gone or stopped. Returns once
 * the nodes it was making or removing are done.
 */
export async function runAgent(name: string, opts: AgentOptions): Promise<void> {
  const log = opts.log ?? (() => undefined);
  const busy = new Set<string>();
  const work: Promise<void>[] = [];
  const track = (p: Promise<void>) => {
    work.push(p);
    void p.finally(() => work.splice(work.indexOf(p), 1));
  };
  // Requests seen but not yet acted on (a resume whose node Slurm already powers up is made once).
  const pending = new Map<string, PowerRequest>();
  let failures = 0;
  // Set when a pass saw something to do: the next pass then looks again at once.
  let eager = true;
  const aborted = new Promise<undefined>((resolve) => opts.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
  // When each node's last making or removing ended: a pass that read the state before then acts on it no more.
  const settled = new Map<string, number>();
  const settle = (names: string[]) => names.forEach((n) => (busy.delete(n), settled.set(n, Date.now())));
  while (!opts.signal.aborted) {
    const passStart = Date.now();
    const state = await readState(name).catch(() => undefined);
    if (!state || ['stopping', 'stopped', 'destroying', 'failed'].includes(state.phase)) break;
    const cloud = (state.cloud ?? []).map((n) => n.name);
    if (state.phase !== 'running' || cloud.length === 0) {
      await sleep(opts.intervalMs ?? 250);
      continue;
    }
    let pass: ReturnType<typeof parsePass>;
    try {
      // Waits for a request only while nothing is going on; stopping does not wait for it.
      const wait = busy.size > 0 || pending.size > 0 || eager ? 0 : IDLE_WAIT_TENTHS;
      const answer = await Promise.race([runInHead(state, passScript(cloud, wait)), aborted]);
      if (answer === undefined) break;
      pass = parsePass(answer);
      failures = 0;
    } catch (err) {
      // slurmctld restarting, or the head busy: try again, saying so now and then.
      if (failures++ % 40 === 0) log(`pass failed: ${(err as Error).message}`);
      await sleep(opts.intervalMs ?? 250);
      continue;
    }
    for (const r of pass.requests) {
      log(`${r.action} ${compressHostlist(r.nodes)}${r.jobs.length ? ` for job(s) ${r.jobs.join(',')}` : ''}`);
      for (const n of r.nodes) pending.set(n, r);
    }
    const made = new Set(state.nodes.map((n) => n.name));
    const slurm = new Map(pass.nodes.map((n) => [n.name, n]));
    const toMake: NodeRecord[] = [];
    const toRemove: string[] = [];
    const toReturn: string[] = [];
    eager = pass.requests.length > 0;
    for (const plan of state.cloud ?? []) {
      if (busy.has(plan.name) || (settled.get(plan.name) ?? 0) >= passStart) {
        eager = true;
        continue;
      }
      const s = slurm.get(plan.name);
      if (!s) continue;
      const asked = pending.get(plan.name);
      if (!made.has(plan.name) && s.power === 'powering-up') toMake.push(plan);
      else if (made.has(plan.name) && (s.power === 'off' || s.power === 'powering-down')) toRemove.push(plan.name);
      else if (made.has(plan.name) && asked?.action === 'resume-fail') toRemove.push(plan.name);
      else if (!made.has(plan.name) && s.power === 'off' && s.state === 'down' && (s.reason?.startsWith(DRAIN_TAG) || s.reason?.includes('ResumeTimeout'))) toReturn.push(plan.name);
      // A request for a node that is already as asked (ResumeProgram called twice, say) needs nothing.
      if (asked && !(asked.action === 'resume' && toMake.some((n) => n.name === plan.name))) pending.delete(plan.name);
    }
    if (toMake.length > 0) {
      const requests = toMake.map((n) => pending.get(n.name));
      for (const n of toMake) {
        busy.add(n.name);
        pending.delete(n.name);
      }
      track(makeNodes(state, toMake, requests, log).finally(() => settle(toMake.map((n) => n.name))));
    }
    if (toRemove.length > 0) {
      toRemove.forEach((n) => busy.add(n));
      track(removeNodes(state, toRemove, log).finally(() => settle(toRemove)));
    }
    if (toMake.length > 0 || toRemove.length > 0 || toReturn.length > 0) eager = true;
    if (toReturn.length > 0) {
      // Back to the powered-down pool: later jobs may use the node again.
      log(`returning ${compressHostlist(toReturn)} to the pool`);
      await runInHead(state, `scontrol update NodeName=${compressHostlist(toReturn)} State=RESUME`).catch((e: unknown) => log(`could not return ${toReturn.join(',')}: ${(e as Error).message}`));
    }
    await sleep(opts.intervalMs ?? 250);
  }
  await Promise.allSettled([...work]);
}

/** Adds scale events to the state, keeping the last EVENTS_KEPT. */
async function recordEvent(state: ClusterState, event: ScaleEvent): Promise<void> {
  await updateState(state.name, state.id, (s) => {
    s.scaleEvents = [...(s.scaleEvents ?? []), event].slice(-EVENTS_KEPT);
  }).catch(() => undefined);
}

/**
 * Makes planned nodes Slurm powers up: recorded first (so `down` finds them), then made by the
 * provider like any node. The event follows the nodes until slurmd registers and the jobs start.
 * A failure marks the nodes DOWN at once with the provider's error, so their jobs are requeued,
 * and removes what was made; the next pass returns them to the pool.
 */
async function makeNodes(state: ClusterState, plans: NodeRecord[], requests: (PowerRequest | undefined)[], log: (l: string) => void): Promise<void> {
  const names = plans.map((p) => p.name);
  const hostlist = compressHostlist(names);
  const requestedAt = Math.min(...requests.map((r) => r?.at ?? Date.now()), Date.now());
  const jobs = [...new Set(requests.flatMap((r) => r?.jobs ?? []))];
  const phases: { phase: string; ms: number }[] = [];
  const mark = (phase: string) => phases.push({ phase, ms: Date.now() - requestedAt });
  const event = (extra: Partial<ScaleEvent> = {}): ScaleEvent => ({
    action: 'resume',
    nodes: hostlist,
    requestedAt: new Date(requestedAt).toISOString(),
    ...(jobs.length ? { jobs } : {}),
    phases,
    ...extra,
  });
  log(`making ${hostlist}`);
  let current = state;
  try {
    current = await updateState(state.name, state.id, (s) => {
      for (const p of plans) if (!s.nodes.some((n) => n.name === p.name)) s.nodes.push({ ...p, cloud: true });
    });
    await createInOrder(current, plans.map((p) => ({ ...p, cloud: true })), Progress.silent(), []);
    mark('node created');
  } catch (err) {
    log(`could not make ${hostlist}: ${(err as Error).message}`);
    const reason = failureReason(err);
    // DOWN at once (its jobs are requeued), not after the whole ResumeTimeout.
    await runInHead(current, `scontrol update NodeName=${hostlist} State=DOWN Reason='${reason}'`).catch(() => undefined);
    await providerFor(current).destroyNodes(labelOf(current), names, { graceMs: 0 }).catch((e: unknown) => log(`could not remove ${hostlist}: ${(e as Error).message}`));
    await updateState(state.name, state.id, (s) => void (s.nodes = s.nodes.filter((n) => !names.includes(n.name)))).catch(() => undefined);
    // Powered down again; with idle_on_node_suspend it comes back idle, for later jobs.
    await runInHead(current, `scontrol update NodeName=${hostlist} State=POWER_DOWN_FORCE`).catch(() => undefined);
    // Slurm holds a requeued batch job for about two minutes (in case it still runs somewhere); these never started.
    if (jobs.length > 0) await runInHead(current, jobs.map((j) => `scontrol update JobId=${j} StartTime=now 2>/dev/null`).join('\n') + '\ntrue').catch(() => undefined);
    await recordEvent(current, event({ error: reason.slice(DRAIN_TAG.length).trim() }));
    return;
  }
  // Followed, not waited for by the next pass: registration, then the jobs' start.
  let registered = false;
  let started = jobs.length === 0;
  // Given up quietly after two minutes: the event then has the phases it reached.
  await waitFor(
    `${hostlist} registered and job(s) started`,
    async () => {
      const out = await runInHead(
        current,
        [`sinfo -h -N -n ${hostlist} -o '%N|%T|%E'`, ...(jobs.length ? [`echo @@jobs; squeue -h -j ${jobs.join(',')} -o '%i|%T' 2>/dev/null || true`] : [])].join('\n'),
      ).catch(() => undefined);
      if (!out) return undefined;
      const [sinfo, squeue = ''] = out.split('@@jobs\n');
      const states = parseSinfoNodes(sinfo ?? '');
      if (!registered && states.length === names.length && states.every((s) => s.power === undefined && !s.notResponding && s.state !== 'down')) {
        registered = true;
        mark('slurmd registered');
      }
      if (!started && registered) {
        const running = squeue.split('\n').filter((l) => /\|(RUNNING|COMPLETING|COMPLETED)$/.test(l.trim()));
        // A job that already left the queue has started too.
        const listed = squeue.split('\n').filter((l) => l.includes('|')).length;
        if (running.length > 0 || listed < jobs.length) {
          started = true;
          mark('job started');
        }
      }
      return registered && started ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 100, maxIntervalMs: 1_000 },
  ).catch(() => undefined);
  log(`made ${hostlist}: ${phases.map((p) => `${p.phase} ${p.ms} ms`).join(', ')}`);
  await recordEvent(current, event());
}

/** Removes nodes Slurm powered down (or gave up on), and forgets them; their plan stays. */
async function removeNodes(state: ClusterState, names: string[], log: (l: string) => void): Promise<void> {
  const hostlist = compressHostlist(names);
  const requestedAt = Date.now();
  log(`removing ${hostlist}`);
  let error: string | undefined;
  try {
    await providerFor(state).destroyNodes(labelOf(state), names, { graceMs: 2_000 });
    await updateState(state.name, state.id, (s) => void (s.nodes = s.nodes.filter((n) => !names.includes(n.name))));
  } catch (err) {
    error = (err as Error).message;
    log(`could not remove ${hostlist}: ${error}`);
  }
  await recordEvent(state, {
    action: 'suspend',
    nodes: hostlist,
    requestedAt: new Date(requestedAt).toISOString(),
    phases: error ? [] : [{ phase: 'node removed', ms: Date.now() - requestedAt }],
    ...(error ? { error } : {}),
  });
}
