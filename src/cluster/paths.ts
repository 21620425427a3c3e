import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { CLUSTER_NAME } from '../spec/names.js';
import { SlurmkitError } from '../util/errors.js';

/** Where slurmkit keeps every cluster's folder; never under /tmp, which nodes replace with their own. */
export function slurmkitHome(): string {
  return process.env.SLURMKIT_HOME ?? join(homedir(), '.slurmkit');
}

/** A short stable tag for the current SLURMKIT_HOME, stamped on every labeled resource. */
export function homeTag(): string {
  return createHash('sha256').update(resolve(slurmkitHome())).digest('hex').slice(0, 8);
}

export { HEAD_SECRETS } from '../slurm/render.js';

/**
 * slurmkit's own folder in every node that does not see the cluster folder: a volume of the
 * cluster that all its nodes mount (batch folders live there).
 */
export const NODE_WORK = '/var/lib/slurmkit';

/** The layout of one cluster's folder on the host. Nothing else on the host is written. */
export class ClusterPaths {
  constructor(readonly root: string) {}

  /** Every path to a cluster folder starts here, so a name like `..` can never reach outside the home. */
  static of(name: string): ClusterPaths {
    if (!CLUSTER_NAME.test(name)) {
      throw new SlurmkitError('USAGE', `"${name}" is not a cluster name`, {
        hint: 'cluster names are 1-31 lower-case letters, digits and "-", starting with a letter (see: slurmkit list)',
      });
    }
    return new ClusterPaths(join(slurmkitHome(), 'clusters', name));
  }

  get state(): string { return join(this.root, 'state.json'); }
  get spec(): string { return join(this.root, 'spec.yaml'); }
  /** Seen as /etc/slurm inside every node. */
  get slurmEtc(): string { return join(this.root, 'etc', 'slurm'); }
  get slurmConf(): string { return join(this.slurmEtc, 'slurm.conf'); }
  get cgroupConf(): string { return join(this.slurmEtc, 'cgroup.conf'); }
  /** Seen as /etc/hosts inside every node. */
  get hosts(): string { return join(this.root, 'etc', 'hosts'); }
  /**
   * Every secret of the cluster (munge key, database password, JWT key, blob account), 0700.
   * Hidden in every node; the head sees it at HEAD_SECRETS.
   */
  get secrets(): string { return join(this.root, 'secrets'); }
  /** Seen as /etc/munge inside the head only: the key never reaches a worker's view. */
  get mungeEtc(): string { return join(this.secrets, 'munge'); }
  get mungeKey(): string { return join(this.mungeEtc, 'munge.key'); }
  /** The JWT key slurmctld signs REST tokens with. */
  /** Each cluster user's Jupyter token on the login node (a file per user, root's, 0600). */
  get jupyterTokens(): string { return join(this.secrets, 'jupyter'); }
  get jwtKey(): string { return join(this.secrets, 'jwt', 'jwt_hs256.key'); }
  /** Seen as /run/munge in every node: the socket of the cluster's one munged. */
  get mungeRun(): string { return join(this.root, 'run', 'munge'); }
  /** Seen as /var/lib/slurm in every node: slurmctld state and slurmd spools. */
  get slurmLib(): string { return join(this.root, 'var', 'lib', 'slurm'); }
  /** Seen as /var/log/slurm in every node. */
  get logs(): string { return join(this.root, 'log'); }
  /** Provider's per-node files (init scripts, boot status). */
  get nodesWork(): string { return join(this.root, 'nodes'); }
  consoleLog(node: string): string { return join(this.logs, `console-${node}.log`); }
}
