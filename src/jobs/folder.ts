/**
 * A batch's folder, which the runner and its array tasks share: on this machine where the
 * nodes see the cluster folder (the local provider), or in the cluster's work volume, which
 * every node mounts, where they do not (docker). The tasks see a plain folder either way; the
 * runner reaches one in the volume through the head (exec), never through this machine's disk.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterPaths, NODE_WORK } from '../cluster/paths.js';
import { headOf, labelOf, providerFor } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';
import { SlurmkitError } from '../util/errors.js';
import { shellQuote as q, sleep } from '../util/run.js';
import { readJson, statusDir, type BlobStatus } from './manifest.js';

export interface BatchFolder {
  /** The folder as the nodes see it: what tasks are given. */
  readonly inNodes: string;
  /** Where a user finds it, for messages. */
  readonly where: string;
  /** Makes these folders (paths inside the batch folder), root's only. */
  mkdirs(...rel: string[]): Promise<void>;
  /** Writes a file whole or not at all, root's only (0600). */
  write(rel: string, content: string): Promise<void>;
  writeJson(rel: string, value: unknown): Promise<void>;
  remove(rel: string): Promise<void>;
  /** Status files not among `known` (blob indices). */
  newStatuses(known: ReadonlySet<number>): Promise<BlobStatus[]>;
  /** Resolves when a status may have changed: at once after a change, or within `ms`. */
  next(ms: number, signal?: AbortSignal): Promise<void>;
  close(): void;
}

/** The folder of a new batch of this cluster. */
export function batchFolder(state: ClusterState, batchId: string): BatchFolder {
  if (providerFor(state).capabilities.sharesHost) return new HostFolder(join(ClusterPaths.of(state.name).root, 'batches', batchId));
  return new VolumeFolder(state, `${NODE_WORK}/batches/${batchId}`);
}

const statusFile = /^(\d+)\.json$/;
/** Shortest time between two reads of a watched status folder. */
const COALESCE_MS = 50;

/** A batch file's JSON, as tasks write theirs (manifest.ts). */
const jsonText = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

class HostFolder implements BatchFolder {
  readonly where: string;
  private watcher: FSWatcher | undefined;
  private changed = false;
  private wake: (() => void) | undefined;
  private lastWake = 0;

  constructor(readonly inNodes: string) {
    this.where = inNodes;
  }

  async mkdirs(...rel: string[]): Promise<void> {
    for (const r of rel) await mkdir(join(this.inNodes, r), { recursive: true, mode: 0o700 });
    // Wakes the poll loop as soon as a task writes a status (inotify); the timeout alone paces it otherwise.
    if (!this.watcher && rel.some((r) => join(this.inNodes, r) === statusDir(this.inNodes))) {
      try {
        this.watcher = watch(statusDir(this.inNodes), () => {
          this.changed = true;
          this.wake?.();
        });
        this.watcher.on('error', () => undefined);
      } catch {
        this.watcher = undefined;
      }
    }
  }

  async write(rel: string, content: string): Promise<void> {
    const path = join(this.inNodes, rel);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, path);
  }

  writeJson(rel: string, value: unknown): Promise<void> {
    return this.write(rel, jsonText(value));
  }

  remove(rel: string): Promise<void> {
    return rm(join(this.inNodes, rel), { force: true });
  }

  async newStatuses(known: ReadonlySet<number>): Promise<BlobStatus[]> {
    const dir = statusDir(this.inNodes);
    const found: BlobStatus[] = [];
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const m = statusFile.exec(f);
      if (!m || known.has(Number(m[1]))) continue;
      const s = await readJson<BlobStatus>(join(dir, f)).catch(() => undefined);
      if (s) found.push(s);
    }
    return found;
  }

  async next(ms: number, signal?: AbortSignal): Promise<void> {
    // Status files come in bursts (every task, each a write and a rename): the folder is read at
    // most every COALESCE_MS, not once per file (at 1,000 blobs that cost the runner seconds of CPU).
    const early = this.lastWake + COALESCE_MS - Date.now();
    if (early > 0 && !signal?.aborted) await sleep(Math.min(early, ms));
    await new Promise<void>((resolve) => {
      if (this.changed || signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms - Math.max(0, early)));
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
    this.changed = false;
    this.lastWake = Date.now();
  }

  close(): void {
    this.watcher?.close();
  }
}

/** How often the runner looks at a folder it cannot watch: a look is one exec in the head (~20 ms). */
const POLL_MS = 150;

class VolumeFolder implements BatchFolder {
  readonly where: string;

  constructor(
    private readonly state: ClusterState,
    readonly inNodes: string,
  ) {
    this.where = `${inNodes} (in the work volume of cluster ${state.name}, on every node)`;
  }

  private async inHead(script: string, input?: string): Promise<string> {
    const r = await providerFor(this.state).exec({
      label: labelOf(this.state),
      node: headOf(this.state).name,
      command: ['bash', '-c', `set -e; umask 077; ${script}`],
      stdio: 'capture',
      ...(input === undefined ? {} : { input }),
    });
    if (r.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `batch folder ${this.inNodes} on ${headOf(this.state).name}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return r.stdout;
  }

  private path(rel: string): string {
    return q(`${this.inNodes}/${rel}`);
  }

  async mkdirs(...rel: string[]): Promise<void> {
    await this.inHead(`mkdir -p ${rel.map((r) => this.path(r)).join(' ')}`);
  }

  async write(rel: string, content: string): Promise<void> {
    // Written beside, then renamed: a task never reads half a file.
    await this.inHead(`cat > ${this.path(`${rel}.tmp`)}; mv ${this.path(`${rel}.tmp`)} ${this.path(rel)}`, content);
  }

  writeJson(rel: string, value: unknown): Promise<void> {
    return this.write(rel, jsonText(value));
  }

  async remove(rel: string): Promise<void> {
    await this.inHead(`rm -f ${this.path(rel)}`);
  }

  async newStatuses(known: ReadonlySet<number>): Promise<BlobStatus[]> {
    // The names it knows go in on stdin; out comes one line per new status file.
    const out = await this.inHead(
      `known=$(cat); cd ${this.path('status')} 2>/dev/null || exit 0; ls | grep -E '^[0-9]+\\.json$' | grep -vxF -f <(printf '%s\\n' "$known") | while read -r f; do tr -d '\\n' < "$f"; echo; done`,
      [...known].map((i) => `${i}.json\n`).join(''),
    );
    return out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as BlobStatus];
        } catch {
          return []; // being written: read next time
        }
      });
  }

  async next(ms: number, signal?: AbortSignal): Promise<void> {
    if (!signal?.aborted) await sleep(Math.min(ms, POLL_MS));
  }

  close(): void {}
}
