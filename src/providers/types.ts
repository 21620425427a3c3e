/**
 * The machine contract. A provider gets machines (nodes) with a hostname, an address
 * on the cluster network and mounts, runs commands in them and finds them by label.
 * It knows nothing about Slurm: what runs at boot comes in the request.
 */
import type { Readable, Writable } from 'node:stream';
import { SlurmkitError } from '../util/errors.js';

/** Identifies everything one cluster owns; providers stamp it on every resource they make. */
export interface ClusterLabel {
  /** Cluster name, for people. */
  name: string;
  /** Random id fixed at creation, so a new cluster of the same name never adopts old leftovers. */
  id: string;
  /**
   * Tag of the SLURMKIT_HOME that owns the cluster: gc only collects leftovers of its own
   * home, never the clusters of another user or test run.
   */
  home: string;
}

export type Mount =
  | { type: 'bind'; source: string; target: string; readOnly?: boolean }
  | { type: 'tmpfs'; target: string; mode?: string; sizeMiB?: number; readOnly?: boolean }
  /**
   * A folder of the cluster by name (e.g. "home"): the same for every node that mounts it, kept
   * while nodes are destroyed and created again (stop/start), removed with the cluster
   * (removeByLabel; a provider may keep them in the work dir, which goes with the cluster's
   * folder). Empty at first.
   */
  | { type: 'volume'; name: string; target: string };

export interface NodeFile {
  /** Absolute path inside the node; missing folders are made (root's, 0755). */
  path: string;
  content: string | Buffer;
  /** e.g. 0o400. */
  mode: number;
  /** User (and group of the same name) that owns it, as the node's /etc/passwd knows it; default root. */
  owner?: string;
}

export interface NetworkRequest {
  label: ClusterLabel;
  /** CIDR, e.g. 10.213.4.0/24; the gateway gets the first address. */
  subnet: string;
  gateway: string;
  prefixLength: number;
}

export interface NodeSpec {
  /** Hostname inside the node. */
  hostname: string;
  /**
   * The machine it runs on, for providers of several (a host name of the swarm provider);
   * left out, the provider chooses.
   */
  host?: string;
  /** Stable small integer, unique in the cluster (names host-side interfaces). */
  index: number;
  address: string;
  /**
   * Applied in order, inside the node only. A target must exist on the host or lie under an
   * earlier tmpfs; a bind's source may also lie under an earlier mount of this node.
   */
  mounts: Mount[];
  /**
   * Files put in place inside the node after its mounts (so they may lie under a tmpfs) and
   * before `boot`: how a node gets its keys and configuration without a shared host folder.
   * Their content never appears on a command line or in a log.
   */
  files?: NodeFile[];
  /**
   * The node mounts a FUSE filesystem itself (the GlusterFS client of a cluster whose volumes
   * do not span hosts): the provider gives it /dev/fuse and the right to mount.
   */
  fuse?: boolean;
  /**
   * The node runs its jobs' tasks in sandboxes (bubblewrap, started by Slurm's SPANK plugin): the
   * provider lets its processes make user, PID, IPC and mount namespaces, mount a fresh /proc,
   * and gives it cgroup v1 pids and memory controllers of its own that root may write.
   */
  sandbox?: boolean;
  /**
   * TCP ports of the node that this machine talks to (blob storage on the head), where it cannot
   * reach the node's address itself (`reachesNodes` false): the provider publishes them on the
   * node's host, and `reach` says where.
   */
  ports?: number[];
  /**
   * Addresses this node exchanges messages with all the time: 'subnet' (every address of the
   * cluster's subnet, for the head, which talks to every node) or a list (the head, for a
   * worker). A provider whose nodes share one bridge resolves them ahead of time: the kernel's
   * ARP table is one for all network namespaces (net.ipv4.neigh.default.gc_thresh3, 1,024
   * entries), and a few hundred nodes that each learn their peers overflow it.
   */
  neighbours?: 'subnet' | string[];
  /** Shell commands run inside the node once network and mounts are ready. Non-zero exit fails the node. */
  boot: string;
  /** Where the node's own console output (init and boot) goes, on the host. */
  consoleLog: string;
}

export interface CreateNodesRequest {
  label: ClusterLabel;
  network: NetworkRequest;
  nodes: NodeSpec[];
  /** Folder on the host where the provider may keep per-node files. */
  workDir: string;
  timeoutMs: number;
}

export interface ExecRequest {
  label: ClusterLabel;
  node: string;
  command: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** inherit: attach to this terminal (interactive); capture: collect output. */
  stdio: 'inherit' | 'capture';
  input?: string;
  /** Run as this user (name or uid); default root. */
  user?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A long-lived command in a node (see NodeProvider.open). */
export interface OpenRequest {
  label: ClusterLabel;
  node: string;
  command: string[];
  env?: Record<string, string>;
}

/** A process started with NodeProvider.open: its stdin and stdout are pipes to this process. */
export interface NodeProcess {
  stdin: Writable;
  stdout: Readable;
  /** Resolves with its exit code once it has ended and its stdout has been read to the end. */
  exited: Promise<number>;
  /** The last few kilobytes it wrote to stderr, for error messages. */
  stderrTail(): string;
  /** Ends it: closes its stdin and stops it. */
  close(): void;
  /** Whether it keeps this Node process alive (as a child process does by default). */
  hold(keep: boolean): void;
}

export interface NodeStatus {
  hostname: string;
  /** Host PID of the node's init, when running. */
  pid: number | undefined;
  running: boolean;
  /** The machine it runs on, for providers of several. */
  host?: string;
  /** Names of the programs running in the node (e.g. slurmd, munged). */
  processes: string[];
}

/**
 * Which labeled resources to remove: one cluster's (by id), or a home's leftovers. A cluster
 * whose folder exists but whose state cannot be read is kept by name: its id is unknown, and
 * its nodes may still run jobs.
 */
export type LabelSelector =
  /** `keepVolumes`: everything but the cluster's volumes (stop keeps them for start). */
  | { id: string; keepVolumes?: boolean }
  | { home: string; keepIds: string[]; keepNames: string[] };

export interface LeftoverReport {
  /** Human-readable resource descriptions, e.g. "bridge skab12cdbr". */
  found: string[];
  removed: string[];
  /** Each with the exact shell command to retry by hand. */
  failed: { resource: string; error: string; retry: string }[];
}

export interface ProviderCapabilities {
  /** Nodes can be added to and removed from a running cluster. */
  scale: boolean;
  /** Requires root on this machine. */
  needsRoot: boolean;
  /**
   * Nodes are process trees on this machine that share its filesystem, PIDs and the network
   * gateway address: a node's files, processes and addresses can be checked from the host.
   */
  sharesHost: boolean;
  /**
   * A volume is the same folder for every node that mounts it, wherever the node runs. Not on
   * a provider of several hosts whose volumes are each host's own: there the cluster serves
   * its shared folders itself.
   */
  sharedVolumes: boolean;
  /**
   * This machine reaches every node at its cluster address. Not on a swarm, whose overlay
   * network only its containers join: there a node's `ports` are published on its host.
   */
  reachesNodes: boolean;
}

/** One check of what a machine needs, with the fix when it fails. */
export interface Check {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
}

/** What the clusters to check would run, for a provider's preflight. */
export interface PreflightRequest {
  /** Programs the nodes run, each with who needs it (e.g. "template lab"). */
  programs: Map<string, string[]>;
  /** Mounts of every kind of node, each with who needs it. */
  mounts: { mounts: Mount[]; who: string }[];
  /** Paths under this folder are made by slurmkit itself: not a requirement of the machine. */
  ownFolder: string;
  /** Also the slower checks a user asks for with `doctor` (namespaces, firewall, ...). */
  thorough?: boolean;
}

export interface NodeProvider {
  readonly kind: string;
  readonly capabilities: ProviderCapabilities;

  /**
   * Creates the cluster network (bridge, firewall rule). Idempotent: an existing network
   * with the same label is kept. If it rejects, anything it made has been removed.
   */
  ensureNetwork(req: NetworkRequest): Promise<void>;

  /**
   * Creates and boots nodes in parallel. Resolves when every node's boot commands exited 0.
   * If it rejects, the nodes of this request have been destroyed; other nodes are untouched.
   */
  createNodes(req: CreateNodesRequest): Promise<void>;

  /** Stops nodes (every process in them) and frees their network interfaces. Idempotent. */
  destroyNodes(label: ClusterLabel, hostnames: string[], opts?: { graceMs?: number }): Promise<void>;

  /** Runs a command inside a running node. Rejects NOT_FOUND if the node is not running. */
  exec(req: ExecRequest): Promise<ExecResult>;

  /**
   * Starts a long-lived command as root inside a running node, talked to through pipes (a
   * command channel costs one process start, not one per command). Rejects NOT_FOUND if the
   * node is not running. Optional: callers fall back to `exec` without it.
   */
  open?(req: OpenRequest): Promise<NodeProcess>;

  /**
   * Gets what nodes are made from ready (a node image, say), before anything of a cluster is
   * made; `log` tells the user about slow steps. Optional: providers that need nothing skip it.
   */
  prepare?(log: (line: string) => void): Promise<unknown>;

  /** Whether this machine can run such nodes: one check per requirement, each with its fix. Never throws. */
  preflight(req: PreflightRequest): Promise<Check[]>;

  /** Subnets already in use where this provider makes cluster networks (a new one must not overlap). */
  takenSubnets(): Promise<string[]>;

  /**
   * Where this machine reaches a TCP port of a running node: its cluster address where
   * `reachesNodes`, else where the provider published it (the port must be in the node's `ports`).
   */
  reach(label: ClusterLabel, hostname: string, address: string, port: number): Promise<{ address: string; port: number }>;

  /** What runs of this cluster right now, found by label (not from memory). */
  list(label: ClusterLabel): Promise<NodeStatus[]>;

  /**
   * Of a provider of several hosts, after `list`: the hosts whose engine did not answer in time
   * (their nodes are missing from the list, whatever runs there).
   */
  lostHosts?(): string[];

  /**
   * Removes every resource carrying this cluster's id (or, with `home`, of any cluster of
   * that home whose id is not in `keepIds` and whose name is not in `keepNames`). Never
   * throws for a resource it cannot remove: it reports it with the command to retry.
   */
  removeByLabel(select: LabelSelector): Promise<LeftoverReport>;
}

/** One machine of a provider of several: a Docker engine, by the name the spec gives it. */
export interface ProviderHost {
  name: string;
  /** DOCKER_HOST-style: unix:///path, tcp://host:port or ssh://user@host[:port]. */
  endpoint: string;
  /** Folder with ca.pem, cert.pem and key.pem for a tcp:// endpoint with TLS. */
  tlsCertPath?: string;
}

/** What a provider is made with, from the cluster's spec (nothing for local and docker). */
export interface ProviderOptions {
  hosts?: ProviderHost[];
  /** A registry the hosts' engines reach: images go through it. */
  registry?: string;
}

export class UnsupportedError extends SlurmkitError {
  constructor(provider: string, operation: string) {
    super('UNSUPPORTED', `the ${provider} provider does not support ${operation}`);
  }
}
