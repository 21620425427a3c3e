/**
 * Services that run on a cluster's head beside Slurm's daemons (blob storage today; the
 * application layer decides which). The lifecycle drives them through this interface only, so
 * it never imports what implements them: those build on the lifecycle's own modules.
 */
import type { Progress } from '../util/progress.js';
import type { ClusterConfig } from '../spec/types.js';
import type { ClusterState } from './state.js';
import type { Mount } from '../providers/types.js';

export interface HeadService {
  /** For progress lines, e.g. "blob storage". */
  readonly name: string;
  /**
   * Before anything is made: checks what the service needs from outside the cluster (a
   * connection string file, say). Rejects with a clear error, and `up` then changes nothing.
   */
  prepare?(config: ClusterConfig): Promise<void>;
  /** Whether this cluster runs the service (its spec asks for it). */
  wanted(state: ClusterState): boolean;
  /**
   * What the service needs in a head that does not see the cluster folder (volumes for its
   * data), given when the head is made. Asked only where the service is wanted.
   */
  headNeeds?(state: ClusterState): Promise<HeadNeeds>;
  /**
   * Once the head runs, while the workers boot: launches the service. `up` awaits it before it
   * reports success; it need not wait for the service to answer (`waitReady` does).
   */
  boot(state: ClusterState): Promise<void>;
  /** Resolves once the service answers (the first command that uses it calls this). */
  waitReady(state: ClusterState): Promise<void>;
  /** Brings the service back on a running head (after `start`); a no-op if the cluster never had it. */
  resume(state: ClusterState, progress: Progress): Promise<void>;
  /** Before the head stops (the service's state is saved); optional: most die with the head cleanly. */
  stop?(state: ClusterState): Promise<void>;
}

export interface HeadNeeds {
  mounts?: Mount[];
  /** TCP ports this machine talks to (published where it cannot reach the head's address). */
  ports?: number[];
}
