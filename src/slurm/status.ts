/** Parsing of Slurm client output. Pure functions only. */

export interface NodeSlurmState {
  name: string;
  /** Lower-case base state, e.g. idle, alloc, mix, down, drain; `*` (not responding) stripped. */
  state: string;
  /** Slurm says the node does not respond (the `*` suffix). */
  notResponding: boolean;
  /** Why the node is down or drained, as Slurm says (set by an administrator or by slurmctld, e.g. "Not responding"). */
  reason?: string;
  /** Power saving (autoscaled nodes): off (`~`), powering up (`#`) or down (`%`); absent when on. */
  power?: 'off' | 'powering-up' | 'powering-down';
}

/** The arguments to pass to sinfo for {@link parseSinfoNodes}. */
export const SINFO_NODE_ARGS = ['-h', '-N', '-o', '%N|%T|%E'];

/** Parses `sinfo -h -N -o '%N|%T|%E'` (the reason optional); a node in several partitions appears once. */
export function parseSinfoNodes(stdout: string): NodeSlurmState[] {
  const seen = new Map<string, NodeSlurmState>();
  for (const line of stdout.split('\n')) {
    const [name, rawState, ...rest] = line.trim().split('|');
    if (!name || !rawState) continue;
    const suffix = /[*~#!%$@^-]+$/.exec(rawState)?.[0] ?? '';
    const notResponding = suffix.includes('*');
    const state = rawState.slice(0, rawState.length - suffix.length).toLowerCase();
    const reason = rest.join('|').trim();
    const power = suffix.includes('#') ? 'powering-up' : suffix.includes('%') ? 'powering-down' : suffix.includes('~') ? 'off' : undefined;
    seen.set(name, { name, state, notResponding, ...(reason && reason !== 'none' ? { reason } : {}), ...(power ? { power } : {}) });
  }
  return [...seen.values()];
}

/** A node is ready for work when Slurm reports it idle and responding. */
export function isReady(n: NodeSlurmState): boolean {
  return n.state === 'idle' && !n.notResponding;
}

/** States in which a node's slurmd has registered and answers, whatever its jobs or drain. */
const IN_SERVICE = new Set(['idle', 'alloc', 'allocated', 'mix', 'mixed', 'completing', 'drained', 'draining', 'drain', 'reserved', 'planned', 'maint']);

/**
 * A node is back (after `start`) when its slurmd answers: it may run jobs, or be drained by an
 * administrator, which slurmkit leaves as it is.
 */
export function isInService(n: NodeSlurmState): boolean {
  return IN_SERVICE.has(n.state) && !n.notResponding;
}
