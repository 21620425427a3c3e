import type { Mount, NodeSpec } from '../types.js';
import { installFilesScript } from '../files.js';
import { SlurmkitError } from '../../util/errors.js';
import { shellQuote as q } from '../../util/run.js';
import { existsSync } from 'node:fs';
import { intToIp, parseCidr } from '../../util/ipv4.js';

/** Where a node's files (NodeSpec.files) wait, root's only, until the node installs them. */
export const filesDir = (workDir: string, hostname: string): string => `${workDir}/${hostname}.files`;

/** Written by the node once its boot commands have run: "ok" or "failed <exit code>". */
export const statusFile = (workDir: string, hostname: string): string => `${workDir}/${hostname}.status`;
export const initFile = (workDir: string, hostname: string): string => `${workDir}/${hostname}.init.sh`;

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Where a path inside the node leads once `mounts` are applied: a host path (through binds),
 * or nothing on the host (it lies in a tmpfs, where the init makes the folders it needs).
 */
function hostPathOf(path: string, mounts: Mount[]): string | undefined {
  for (let i = mounts.length - 1; i >= 0; i--) {
    const m = mounts[i]!;
    if (!isUnder(path, m.target)) continue;
    // A tmpfs or a volume (a folder the provider makes): nothing needed on the host.
    if (m.type !== 'bind') return undefined;
    return hostPathOf(m.source + path.slice(m.target.length), mounts.slice(0, i));
  }
  return path;
}

/** Host paths these mounts need to exist beforehand (mount points and bind sources, as the node sees them). */
export function hostPathsNeeded(mounts: Mount[]): string[] {
  const out = new Set<string>();
  mounts.forEach((m, i) => {
    const earlier = mounts.slice(0, i);
    for (const p of [m.target, ...(m.type === 'bind' ? [m.source] : [])]) {
      const host = hostPathOf(p, earlier);
      if (host !== undefined) out.add(host);
    }
  });
  return [...out];
}

/**
 * Mount targets and bind sources must already exist on the host as the node sees it (through
 * its earlier binds), or lie in a tmpfs this node mounted earlier: creating a folder on the
 * shared host filesystem would change the host.
 */
export function checkMounts(hostname: string, mounts: Mount[]): void {
  mounts.forEach((m, i) => {
    if (!m.target.startsWith('/')) {
      throw new SlurmkitError('INTERNAL', `node ${hostname}: mount ${i} target ${m.target} is not absolute`);
    }
    const earlier = mounts.slice(0, i);
    const target = hostPathOf(m.target, earlier);
    if (target !== undefined && !existsSync(target)) {
      throw new SlurmkitError('PRECONDITION', `node ${hostname}: mount point ${m.target} does not exist on this machine${target === m.target ? '' : ` (at ${target})`}`, {
        hint: 'install the package that provides it (see `slurmkit doctor`)',
      });
    }
    if (m.type !== 'bind') return;
    const source = hostPathOf(m.source, earlier);
    if (source !== undefined && !existsSync(source)) {
      throw new SlurmkitError('INTERNAL', `node ${hostname}: bind source ${m.source} does not exist`);
    }
  });
}

export const fstabFile = (workDir: string, hostname: string): string => `${workDir}/${hostname}.fstab`;

/** A path as an fstab field: spaces, tabs, newlines and backslashes in octal, as fstab(5) reads them. */
const fstabField = (path: string): string => path.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

/**
 * The node's mounts as an fstab, applied in order by one `mount -a -T FILE` (one process for
 * all of them, instead of one per mount). Folders under an earlier tmpfs are made by mount
 * itself (X-mount.mkdir); tmpfs entries name their source "slurmkit", so mount never takes the
 * host's own tmpfs on the same folder (in the node's copy of the host's mounts) for this one.
 */
export function renderFstab(mounts: Mount[]): string {
  const tmpfsTargets: string[] = [];
  const lines = mounts.map((m) => {
    const mkdir = tmpfsTargets.some((t) => isUnder(m.target, t) && m.target !== t) ? ['X-mount.mkdir'] : [];
    if (m.type === 'tmpfs') {
      tmpfsTargets.push(m.target);
      const opts = [...(m.readOnly ? ['ro'] : []), `mode=${m.mode ?? '0755'}`, ...(m.sizeMiB ? [`size=${m.sizeMiB}m`] : []), ...mkdir];
      return `slurmkit ${fstabField(m.target)} tmpfs ${opts.join(',')} 0 0`;
    }
    if (m.type === 'volume') throw new SlurmkitError('INTERNAL', `volume ${m.name} reached the fstab unresolved`);
    // util-linux applies "ro" to a bind mount itself.
    return `${fstabField(m.source)} ${fstabField(m.target)} none ${['bind', ...(m.readOnly ? ['ro'] : []), ...mkdir].join(',')} 0 0`;
  });
  return `# slurmkit: the node's mounts, in order. Generated; do not edit.\n${lines.join('\n')}\n`;
}

/** The first address of the subnet `address`/`prefixLength` lies in. */
const networkOf = (address: string, prefixLength: number): string => intToIp(parseCidr(`${address}/${prefixLength}`).start);

/**
 * A node's MAC address, from its IPv4 address (locally administered, 02:00 then the four bytes),
 * so that any node can know any other's without asking: two nodes on this machine never share
 * an address, since clusters never share a subnet.
 */
export function macOf(address: string): string {
  return ['02', '00', ...address.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/**
 * `ip -batch` lines for permanent neighbour entries (NodeSpec.neighbours): permanent entries are
 * exempt from the ARP table's limit and never expire, and the node never broadcasts to find them.
 * 'subnet' covers every address but the network's, the gateway (the first: the host's bridge),
 * the broadcast and the node's own, so nodes added later are known too.
 */
export function neighbourEntries(node: NodeSpec, prefixLength: number): string[] {
  if (!node.neighbours) return [];
  let addresses: string[];
  if (node.neighbours === 'subnet') {
    const { start, size } = parseCidr(`${node.address}/${prefixLength}`);
    addresses = [];
    for (let n = start + 2; n < start + size - 1; n++) addresses.push(intToIp(n));
  } else addresses = node.neighbours;
  return addresses.filter((a) => a !== node.address).map((a) => `neigh replace ${a} lladdr ${macOf(a)} dev eth0 nud permanent`);
}

/**
 * `ip -batch` lines that turn off delayed ACKs on the node's own address and its subnet.
 * Slurm sends a message as a length and a body in two writes; with Nagle's algorithm on the
 * sender and a delayed ACK on the receiver, every request over a kept-open connection
 * (slurmctld and sacctmgr to slurmdbd, above all) waited 40 ms twice: `sacctmgr load` of a
 * cluster took 0.99 s, with quickack 0.09 s. https://man7.org/linux/man-pages/man8/ip-route.8.html
 */
export function quickAckRoutes(address: string, prefixLength: number): string[] {
  return [
    `route replace local ${address} dev eth0 table local proto kernel scope host src ${address} quickack 1`,
    `route replace ${networkOf(address, prefixLength)}/${prefixLength} dev eth0 proto kernel scope link src ${address} quickack 1`,
  ];
}

/**
 * The node's init: PID 1 of the node's PID namespace, so killing it ends every process in
 * the node. It waits for the host to plug in eth0, configures network, hostname and mounts,
 * runs the boot commands, then reaps orphans until told to stop.
 */
export function renderInitScript(node: NodeSpec, prefixLength: number, workDir: string): string {
  const status = statusFile(workDir, node.hostname);
  return [
    '#!/bin/bash',
    `# slurmkit node ${node.hostname}: PID 1 of its own PID namespace. Generated; do not edit.`,
    'set -eu',
    '# The host writes one line on stdin once our eth0 is in place.',
    'read -r _go || true',
    'exec </dev/null',
    'ip -batch - <<NET',
    'link set lo up',
    `addr add ${node.address}/${prefixLength} dev eth0`,
    'link set eth0 up',
    ...quickAckRoutes(node.address, prefixLength),
    ...neighbourEntries(node, prefixLength),
    'NET',
    `echo ${q(node.hostname)} > /proc/sys/kernel/hostname`,
    // Before the node covers any host folder: the fstab lies in the cluster folder.
    `mount -a -T ${q(fstabFile(workDir, node.hostname))}`,
    installFilesScript(node.files, filesDir(workDir, node.hostname)),
    'set +e',
    '(',
    'set -e',
    node.boot,
    ')',
    'rc=$?',
    `if [ $rc -ne 0 ]; then echo "slurmkit: boot of ${node.hostname} failed with exit code $rc"; echo "failed $rc" > ${q(status)}; exit $rc; fi`,
    // The host reads this file until it starts with "ok"; a partly written file does not.
    `echo ok > ${q(status)}`,
    '# Stop: ask every process in the node to end, give them time to save state, then leave.',
    "trap 'kill -TERM -1 2>/dev/null; for _ in {1..100}; do kill -0 -1 2>/dev/null || break; sleep 0.1; done; exit 0' TERM INT",
    'while :; do sleep 86400 & wait $!; done',
    '',
  ].join('\n');
}
