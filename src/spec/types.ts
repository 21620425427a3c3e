/**
 * The resolved cluster configuration: what a validated spec turns into after defaults
 * and templates are applied. Everything downstream (renderers, lifecycle, providers)
 * consumes this, never the raw YAML.
 */
import type { ProviderType } from './schema.js';

/** One Slurm compute node (a worker). The head runs slurmctld and is not a compute node. */
export interface NodeConfig {
  /** Hostname and Slurm NodeName, e.g. "c3". Unique within the cluster. */
  name: string;
  /** Name of the node group it came from. */
  group: string;
  cpus: number;
  memoryMiB: number;
  /** Slurm node features (sorted, unique). */
  features: string[];
  /** Powered down until a job needs it (State=CLOUD): made and taken away by autoscaling. */
  cloud?: boolean;
}

/** Autoscaling on the queue: nodes above minNodes are made when jobs need them. */
export interface AutoscaleConfig {
  minNodes: number;
  /** The group's count. */
  maxNodes: number;
  idleTimeoutSeconds: number;
  resumeTimeoutSeconds: number;
}

export interface NodeGroupConfig {
  /** Group name; node names are `${name}${index}`, index from 1. */
  name: string;
  count: number;
  /** provider swarm: the fewest nodes `up` may go on with when hosts do not answer; left out, all of them. */
  minNodes?: number;
  cpus: number;
  memoryMiB: number;
  features: string[];
  autoscale?: AutoscaleConfig;
}

export interface SandboxConfig {
  /** none: no network at all; cluster: the cluster's own nodes, but none of its daemons (Slurm's, the database, Azurite) and nothing beyond the cluster. */
  network: 'none' | 'cluster';
  memoryMiB?: number;
  pids?: number;
  writable: string[];
  /** Performance counters (perf_event_open) allowed inside the sandbox, as the machine's kernel.perf_event_paranoid allows them to any user. */
  perf: boolean;
}

export interface PartitionConfig {
  name: string;
  /** Expanded, in cluster node order. */
  nodes: string[];
  default: boolean;
  /** Minutes, or "UNLIMITED". */
  maxTime: number | 'UNLIMITED';
  /** One job per node (OverSubscribe=EXCLUSIVE). */
  exclusive: boolean;
  /** Every job step on these nodes runs in a fresh sandbox. */
  sandbox?: SandboxConfig;
  /** Extra `Key=Value` pairs for this PartitionName line. */
  extra: Record<string, string>;
}

export interface SlurmSettings {
  /** SlurmdTimeout: seconds before an unresponsive slurmd is marked DOWN. */
  slurmdTimeoutSeconds: number;
  /** Appended verbatim as Key=Value lines to slurm.conf (after our own keys, sorted). */
  extraConf: Record<string, string>;
}

export interface NetworkSettings {
  /** IPv4 subnet in CIDR form for the cluster bridge, or undefined to let slurmkit pick a free one. */
  subnet?: string;
}

/** A person who logs in to the cluster: the same uid and gid on every node. */
export interface UserConfig {
  /** Login name; also the name of the personal group when the user has one. */
  name: string;
  /** 1000..59999; allocated from 2001 up when the spec leaves it out. */
  uid: number;
  /** Primary group id; the spec's gid, else the uid (a personal group). */
  gid: number;
  /** Supplementary group names (sorted, unique, without the primary group). */
  groups: string[];
}

/** One line of the cluster's /etc/group. */
export interface UnixGroupConfig {
  name: string;
  gid: number;
  /** Users with this as a supplementary group, sorted. Users whose primary group it is are not listed. */
  members: string[];
}

export interface SwarmHostConfig {
  name: string;
  endpoint: string;
  tlsCertPath?: string;
  /** At most this many workers; left out, no limit. */
  workers?: number;
}

/** Where nodes run; a swarm also names its hosts and the head's. */
export type ProviderConfig = { type: Exclude<ProviderType, 'swarm'> } | { type: 'swarm'; hosts: SwarmHostConfig[]; head: string; registry?: string };

export interface ClusterConfig {
  name: string;
  provider: ProviderConfig;
  head: { hostname: string };
  /** A node outside Slurm's compute nodes where users work (Slurm's clients, /home), with Jupyter if asked. */
  login?: { hostname: string; jupyter: boolean };
  groups: NodeGroupConfig[];
  /** All compute nodes, group by group, in index order. */
  nodes: NodeConfig[];
  partitions: PartitionConfig[];
  slurm: SlurmSettings;
  network: NetworkSettings;
  /** slurmdbd with MariaDB on the head; slurm.conf then sends accounting to it. */
  accounting: boolean;
  /** slurmrestd on the head, reachable only through a unix socket. */
  rest: boolean;
  /** Cluster users in spec order, ids filled in. */
  users: UserConfig[];
  /** Blob storage: Azurite in the head (started with the cluster), a real account, or none. */
  storage: StorageConfig;
  /** Every group the users need: personal groups and supplementary groups, sorted by gid. */
  unixGroups: UnixGroupConfig[];
}

export interface StorageConfig {
  blob: 'azurite' | 'azure' | 'none';
  /** With blob: azure, the absolute path of the 0600 file holding the account's connection string. */
  connectionStringFile?: string;
}

/**
 * The login node's address: this offset of the cluster subnet, just below the workers'. Not
 * right after the head's: a swarm's overlay network gives its load balancer endpoints (one per
 * host that runs a node) the lowest free addresses, from .3 up, and a node whose address one of
 * them took cannot attach.
 */
export const LOGIN_OFFSET = 10;

/** Workers' addresses start at this offset of the cluster subnet, so low ones stay free for the gateway, head and services. */
export const FIRST_WORKER_OFFSET = 11;

/** Where every host sits on the cluster network; decided by the cluster layer, consumed by renderers. */
export interface NetworkPlan {
  /** CIDR of the cluster subnet, e.g. "10.213.4.0/24". */
  subnet: string;
  prefixLength: number;
  /** Bridge (gateway) address on the host. */
  gateway: string;
  /** Hostname -> IPv4 address, head included. */
  addresses: Record<string, string>;
}
