/**
 * Live views of clusters for dashboards: one poller per watched cluster, shared by every
 * client watching it, reads the cluster (nodes with their Slurm state, timings, scale events),
 * its partitions and its queue every POLL_MS and tells listeners only when something changed.
 * Slurm has no event stream to follow, so this is the one place that polls it for the server.
 */
import { partitions, queue } from '../app/jobs.js';
import { showCluster } from '../app/clusters.js';

/** Each read costs a /proc scan and three Slurm commands in the head (~40 ms of CPU): twice a second is live enough. */
export const POLL_MS = 500;

export interface Snapshot {
  cluster: Awaited<ReturnType<typeof showCluster>> | null;
  partitions: Awaited<ReturnType<typeof partitions>>;
  queue: Awaited<ReturnType<typeof queue>>;
  /** Why the cluster could not be read (it was destroyed, say). */
  error?: string;
  at: string;
}

type Listener = (s: Snapshot) => void;

interface Watch {
  listeners: Set<Listener>;
  last: string;
  snapshot: Snapshot | undefined;
  timer: NodeJS.Timeout | undefined;
}

async function read(cluster: string): Promise<Snapshot> {
  const at = new Date().toISOString();
  try {
    const shown = await showCluster(cluster);
    if (shown.phase !== 'running') return { cluster: shown, partitions: [], queue: [], at };
    const [parts, q] = await Promise.all([partitions(cluster).catch(() => []), queue(cluster).catch(() => [])]);
    return { cluster: shown, partitions: parts, queue: q, at };
  } catch (err) {
    return { cluster: null, partitions: [], queue: [], error: (err as Error).message, at };
  }
}

export class Live {
  private readonly watches = new Map<string, Watch>();

  /** Calls `listener` with the current snapshot, then with every changed one; returns the unsubscribe. */
  subscribe(cluster: string, listener: Listener): () => void {
    let w = this.watches.get(cluster);
    if (!w) {
      w = { listeners: new Set(), last: '', snapshot: undefined, timer: undefined };
      this.watches.set(cluster, w);
      void this.poll(cluster, w);
    } else if (w.snapshot) {
      listener(w.snapshot);
    }
    w.listeners.add(listener);
    return () => {
      w.listeners.delete(listener);
      if (w.listeners.size === 0) {
        clearTimeout(w.timer);
        this.watches.delete(cluster);
      }
    };
  }

  close(): void {
    for (const w of this.watches.values()) clearTimeout(w.timer);
    this.watches.clear();
  }

  private async poll(cluster: string, w: Watch): Promise<void> {
    const s = await read(cluster);
    if (this.watches.get(cluster) !== w) return;
    // Only what changed is news: the time of reading is not.
    const key = JSON.stringify({ ...s, at: '' });
    if (key !== w.last) {
      w.last = key;
      w.snapshot = s;
      for (const l of w.listeners) l(s);
    }
    w.timer = setTimeout(() => void this.poll(cluster, w), POLL_MS);
  }
}
