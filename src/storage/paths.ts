import { join, relative } from 'node:path';
import { ClusterPaths, HEAD_SECRETS } from '../cluster/paths.js';

/** Where blob storage keeps its files inside a cluster's folder (nothing outside it). */
export class BlobPaths {
  constructor(readonly cluster: ClusterPaths) {}

  static of(name: string): BlobPaths {
    return new BlobPaths(ClusterPaths.of(name));
  }

  /** Azurite's workspace: its metadata databases and blob extents. */
  get data(): string { return join(this.cluster.root, 'blob'); }
  /** Owner-only (0700); every file in it is 0600. */
  get secrets(): string { return join(this.cluster.root, 'secrets', 'blob'); }
  /** `account:key`, exactly the value Azurite reads from AZURITE_ACCOUNTS. */
  get account(): string { return join(this.secrets, 'account'); }
  /** The same file as the head sees it (the host path is hidden inside nodes). */
  get accountInHead(): string { return join(HEAD_SECRETS, relative(this.cluster.secrets, this.account)); }
  /** The connection string slurmkit's commands use, for whichever account is active (with its key). */
  get connectionString(): string { return join(this.secrets, 'connection-string'); }
  /**
   * What jobs use: the same account through a shared access signature, never its key (a
   * connection string without a key is copied as it is). Root-only, visible in every node.
   */
  get jobsConnectionString(): string { return join(this.cluster.root, 'blob-jobs', 'connection-string'); }
  /** What is configured (no secrets): which kind is active and whether Azurite was ever enabled. */
  get config(): string { return join(this.cluster.root, 'blob.json'); }
  get log(): string { return join(this.cluster.logs, 'azurite.log'); }
}
