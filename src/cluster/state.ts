/**
 * The state store: one `state.json` per cluster folder, read back through the same schema
 * it was written with, changed only under the cluster's lock, and replaced atomically.
 */
import { PROVIDER_TYPES } from '../spec/schema.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ClusterPaths, slurmkitHome } from './paths.js';
import { SlurmkitError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { CLUSTER_NAME } from '../spec/names.js';

/** The version this slurmkit writes. A file of a later version is refused, never half-read. */
export const STATE_VERSION = 1;

const PHASES = ['creating', 'running', 'stopping', 'stopped', 'starting', 'failed', 'destroying'] as const;
export type ClusterPhase = (typeof PHASES)[number];

const ipv4 = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}$/, 'an IPv4 address');

const nodeRecordSchema = z.strictObject({
  name: z.string().min(1),
  role: z.enum(['head', 'worker', 'login']),
  /** Stable index for host-side interface names. */
  index: z.number().int().min(0),
  address: ipv4,
  /** The host it runs on, for providers of several hosts (swarm). */
  host: z.string().min(1).optional(),
  /** A worker's node group (absent in clusters made before it was kept: found from the spec by name). */
  group: z.string().min(1).optional(),
  /**
   * A worker added to the running cluster: what slurmd registers with (slurmd -Z --conf), since
   * the configuration slurmctld hands to configless nodes lists it only after slurmctld restarts.
   */
  slurmdConf: z.string().min(1).optional(),
  /** Made by autoscaling (State=CLOUD in slurm.conf): slurmd says it booted (-b), and the agent takes it away when Slurm powers it down. */
  cloud: z.literal(true).optional(),
  /** A login node's Jupyter servers, one per cluster user. */
  jupyter: z.literal(true).optional(),
});

/** One resume or suspend of autoscaling, with when each of its phases ended (ms after the request). */
const scaleEventSchema = z.strictObject({
  action: z.enum(['resume', 'suspend', 'resume-fail']),
  nodes: z.string().min(1),
  requestedAt: z.iso.datetime(),
  jobs: z.array(z.string()).optional(),
  phases: z.array(z.strictObject({ phase: z.string(), ms: z.number() })),
  error: z.string().optional(),
});
export type ScaleEvent = z.output<typeof scaleEventSchema>;

const stateSchema = z
  .strictObject({
    version: z.literal(STATE_VERSION),
    name: z.string().regex(CLUSTER_NAME),
    id: z.string().regex(/^[0-9a-f]{6}$/),
    provider: z.enum(PROVIDER_TYPES),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    phase: z.enum(PHASES),
    network: z.strictObject({
      subnet: z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/),
      prefixLength: z.number().int().min(8).max(30),
      gateway: ipv4,
      addresses: z.record(z.string(), ipv4),
      /** Written by slurmkit before providers named their own networks; read and kept, never used. */
      bridge: z.string().min(1).optional(),
    }),
    nodes: z.array(nodeRecordSchema).min(1),
    /** Autoscaled workers planned at up (name, address, index) that Slurm powers up and down; made ones are in nodes too. */
    cloud: z.array(nodeRecordSchema).optional(),
    /** The last autoscaling events, newest last. */
    scaleEvents: z.array(scaleEventSchema).optional(),
    /** A swarm's hosts: how each engine is reached (every command of the cluster needs them). */
    hosts: z
      .array(z.strictObject({ name: z.string().min(1), endpoint: z.string().min(1), tlsCertPath: z.string().min(1).optional() }))
      .min(1)
      .optional(),
    /** A swarm's registry, through which engines get the node image (absent: saved into each from the first). */
    registry: z.string().min(1).optional(),
    /** Accounting, REST and users, fixed at up (absent in clusters made before they existed). */
    site: z.strictObject({ accounting: z.boolean(), rest: z.boolean(), users: z.array(z.string()) }).optional(),
    /** Blob storage from the spec; clusters made before it existed have Azurite on first use. */
    storage: z.strictObject({ blob: z.enum(['azurite', 'azure', 'none']), connectionStringFile: z.string().optional() }).optional(),
    /** Timings of the last lifecycle command. */
    timings: z.array(z.strictObject({ phase: z.string(), ms: z.number() })),
    /** The last error, when phase is failed. */
    error: z.string().optional(),
  })
  .refine((s) => s.nodes.filter((n) => n.role === 'head').length === 1, { message: 'exactly one node must have role head', path: ['nodes'] });

export type ClusterState = z.output<typeof stateSchema>;
export type NodeRecord = ClusterState['nodes'][number];
export type PhaseTiming = ClusterState['timings'][number];

/** How long a command waits for another one that is changing the same cluster's state. */
const LOCK_WAIT_MS = 30_000;

const lockFile = (name: string) => join(ClusterPaths.of(name).root, 'state.lock');

/** A state file that cannot be trusted: it is reported with its path and the fix, never used. */
export function brokenStateError(name: string, file: string, problem: string): SlurmkitError {
  return new SlurmkitError('CONFLICT', `the state of cluster ${name} (${file}) cannot be used: ${problem}`, {
    hint: `if you kept a copy, put it back; otherwise slurmkit down ${name} --force removes the cluster and whatever it left running`,
  });
}

function parseState(name: string, file: string, text: string): ClusterState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw brokenStateError(name, file, text.trim() === '' ? 'it is empty' : `it is not valid JSON (${(err as Error).message})`);
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > STATE_VERSION) {
    throw new SlurmkitError('CONFLICT', `cluster ${name} was written by a newer slurmkit (state version ${version}; this one reads ${STATE_VERSION})`, {
      hint: 'use the slurmkit that created it',
    });
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw brokenStateError(name, file, `it does not match the state schema (${issues.slice(0, 3).join('; ')}${issues.length > 3 ? '; ...' : ''})`);
  }
  if (parsed.data.name !== name) throw brokenStateError(name, file, `it describes cluster "${parsed.data.name}"`);
  return parsed.data;
}

/**
 * Reads and validates a cluster's state. Undefined when the cluster has no folder or no state
 * file yet; a state that cannot be read or fails validation throws CONFLICT with the fix.
 */
export async function readState(name: string): Promise<ClusterState | undefined> {
  const file = ClusterPaths.of(name).state;
  let text: string;
  let seen: string;
  try {
    const st = await stat(file, { bigint: true });
    // Every write renames a new file over the old one: same inode, size and mtime is the same file.
    seen = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
    const known = validated.get(file);
    if (known?.seen === seen) return structuredClone(known.state);
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw brokenStateError(name, file, (err as Error).message);
  }
  const state = parseState(name, file, text);
  validated.set(file, { seen, state: structuredClone(state) });
  return state;
}

/**
 * States read and validated by this process, by file, with the file's identity when read
 * (a long-lived server reads the same state for every request; callers get copies to change).
 */
const validated = new Map<string, { seen: string; state: ClusterState }>();

/**
 * Writes the whole state: to a temporary file of its own name, flushed to disk, then renamed
 * over state.json. Readers see the old or the new state, never a mix, and a full disk or a
 * crash leaves the old one in place. Callers hold the cluster's lock (see updateState).
 */
async function writeState(state: ClusterState): Promise<void> {
  const paths = ClusterPaths.of(state.name);
  const checked = stateSchema.parse(state);
  const tmp = `${paths.state}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(checked, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, paths.state);
  } catch (err) {
    await rm(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    throw new SlurmkitError('PRECONDITION', `could not save the state of cluster ${state.name}: ${e.message}`, {
      hint: e.code === 'ENOSPC' ? `free space where ${slurmkitHome()} lives, then run the command again` : `check that ${paths.root} is writable`,
      cause: err,
    });
  }
}

/** Runs fn while holding the lock on the cluster's state (other commands wait for it); NOT_FOUND without a cluster folder. */
async function withStateLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (!existsSync(ClusterPaths.of(name).root)) throw notFound(name, []);
  return withLock(lockFile(name), { timeoutMs: LOCK_WAIT_MS, what: `the state of cluster ${name}`, owner: `pid ${process.pid}` }, fn);
}

/** Saves a new cluster's first state. CONFLICT if the name is taken (or its folder holds a broken state). */
export async function createState(state: ClusterState): Promise<ClusterState> {
  return withStateLock(state.name, async () => {
    if (await readState(state.name)) {
      throw new SlurmkitError('CONFLICT', `a cluster named "${state.name}" already exists`, {
        hint: `use it (slurmkit show ${state.name}), remove it (slurmkit down ${state.name}) or pick another name with --name`,
      });
    }
    state.updatedAt = new Date().toISOString();
    await writeState(state);
    return state;
  });
}

/**
 * Reads the current state under the lock, applies `change` to it and saves it, so that two
 * commands changing one cluster never lose each other's updates. Rejects NOT_FOUND if the
 * cluster is gone and CONFLICT if it was replaced by another cluster of the same name.
 */
export async function updateState(name: string, id: string, change: (state: ClusterState) => void): Promise<ClusterState> {
  return withStateLock(name, async () => {
    const current = await readState(name);
    if (!current) throw notFound(name, []);
    if (current.id !== id) {
      throw new SlurmkitError('CONFLICT', `cluster ${name} was replaced while this command ran (id ${id} is now ${current.id})`, {
        hint: `see: slurmkit show ${name}`,
      });
    }
    change(current);
    current.updatedAt = new Date().toISOString();
    await writeState(current);
    return current;
  });
}

function notFound(name: string, names: string[]): SlurmkitError {
  return new SlurmkitError('NOT_FOUND', `no cluster named "${name}"`, {
    hint: names.length ? `existing clusters: ${names.join(', ')}` : 'create one with: slurmkit up --template lab',
  });
}

export async function requireState(name: string): Promise<ClusterState> {
  const state = await readState(name);
  if (!state) throw notFound(name, (await listClusterEntries()).map((e) => e.name));
  return state;
}

/** One folder under clusters/: its state, or why it cannot be used. */
export type ClusterEntry = { name: string; state: ClusterState; error?: undefined } | { name: string; state?: undefined; error: SlurmkitError };

/**
 * Every cluster folder of this home. A folder whose state is missing or broken is listed
 * with its error, never skipped: it may still own running nodes.
 */
export async function listClusterEntries(): Promise<ClusterEntry[]> {
  let names: string[];
  try {
    names = (await readdir(join(slurmkitHome(), 'clusters'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
  const entries = await Promise.all(
    names
      .filter((n) => CLUSTER_NAME.test(n))
      .map(async (name): Promise<ClusterEntry> => {
        try {
          const state = await readState(name);
          if (state) return { name, state };
          const file = ClusterPaths.of(name).state;
          return { name, error: brokenStateError(name, file, 'it is missing (a command was interrupted before saving it, or it was removed)') };
        } catch (err) {
          return { name, error: err instanceof SlurmkitError ? err : brokenStateError(name, ClusterPaths.of(name).state, String(err)) };
        }
      }),
  );
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}

/** The clusters whose state can be used. */
export async function listStates(): Promise<ClusterState[]> {
  return (await listClusterEntries()).flatMap((e) => (e.state ? [e.state] : []));
}
