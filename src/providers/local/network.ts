import { readFile } from 'node:fs/promises';
import type { ClusterLabel, NetworkRequest } from '../types.js';
import { run, waitFor, which } from '../../util/run.js';
import { SlurmkitError } from '../../util/errors.js';

/** Interface names are limited to 15 characters, so they carry the short id; the alias carries the full label. */
export const bridgeName = (id: string): string => `sk${id}br`;
export const vethName = (id: string, index: number): string => `sk${id}n${index}`;
export const labelAlias = (label: ClusterLabel): string => `slurmkit cluster=${label.name} id=${label.id} home=${label.home}`;
export const ruleComment = (label: ClusterLabel): string => `slurmkit:${label.home}:${label.name}:${label.id}`;

interface IpLink {
  ifname: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

export interface LabeledBridge {
  name: string;
  clusterName: string;
  clusterId: string;
  home: string;
}

export async function listLabeledBridges(): Promise<LabeledBridge[]> {
  const { stdout } = await run('ip', ['-j', '-d', 'link', 'show', 'type', 'bridge']);
  const links = JSON.parse(stdout || '[]') as IpLink[];
  const out: LabeledBridge[] = [];
  for (const l of links) {
    const m = /^slurmkit cluster=(\S+) id=(\S+) home=(\S+)$/.exec(l.ifalias ?? '');
    if (m) out.push({ name: l.ifname, clusterName: m[1]!, clusterId: m[2]!, home: m[3]! });
  }
  return out;
}

/** IPv4 networks routed on this host right now, as [network, prefix] pairs. */
export async function hostRoutes(): Promise<{ dst: string }[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
  return (JSON.parse(stdout || '[]') as { dst: string }[]).filter((r) => r.dst && r.dst !== 'default');
}

/**
 * Bridged traffic passes iptables FORWARD only when br_netfilter is loaded (Docker loads
 * it and sets the policy to DROP); only then does the cluster need its own ACCEPT rule.
 */
export async function bridgeTrafficIsFiltered(): Promise<boolean> {
  try {
    return (await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}

function forwardRule(label: ClusterLabel): string[] {
  const br = bridgeName(label.id);
  return ['FORWARD', '-i', br, '-o', br, '-m', 'comment', '--comment', ruleComment(label), '-j', 'ACCEPT'];
}

export async function createNetwork(req: NetworkRequest): Promise<void> {
  const br = bridgeName(req.label.id);
  const existing = await listLabeledBridges();
  // Only a bridge this call made is removed when a later step fails: a concurrent call, or
  // `start` on a running cluster, may own the existing one.
  let created = false;
  if (!existing.some((b) => b.name === br)) {
    const add = await run('ip', ['link', 'add', 'name', br, 'type', 'bridge'], { allowFailure: true });
    if (add.exitCode === 0) created = true;
    else if (!/File exists/i.test(add.stderr)) throw new SlurmkitError('COMMAND_FAILED', `ip link add name ${br} type bridge exited with ${add.exitCode}: ${add.stderr.trim()}`);
  }
  if (created) {
    await run('ip', ['-batch', '-'], {
      input: [`link set dev ${br} alias "${labelAlias(req.label)}"`, `addr add ${req.gateway}/${req.prefixLength} dev ${br}`, `link set dev ${br} up`].join('\n'),
    }).catch(async (err) => {
      await run('ip', ['link', 'del', br], { allowFailure: true });
      throw err;
    });
  } else {
    // A concurrent call may still be configuring it: wait until it is up with its label.
    await waitFor(`bridge ${br}`, async () => ((await listLabeledBridges()).some((b) => b.name === br) ? true : undefined), { timeoutMs: 5_000, intervalMs: 10 });
  }
  if ((await bridgeTrafficIsFiltered()) && (await which('iptables'))) {
    const rule = forwardRule(req.label);
    const present = await run('iptables', ['-w', '-C', ...rule], { allowFailure: true });
    if (present.exitCode !== 0) {
      try {
        await run('iptables', ['-w', '-I', ...rule]);
      } catch (err) {
        if (created) await run('ip', ['link', 'del', br], { allowFailure: true });
        throw err;
      }
    }
  }
}

export interface LabeledRule {
  /** The rule as `iptables -S` prints it, starting with -A. */
  spec: string[];
  clusterName: string;
  clusterId: string;
  home: string;
}

export async function listLabeledRules(): Promise<LabeledRule[]> {
  if (!(await which('iptables'))) return [];
  const { stdout } = await run('iptables', ['-w', '-S', 'FORWARD'], { allowFailure: true });
  const out: LabeledRule[] = [];
  for (const line of stdout.split('\n')) {
    const m = /--comment "?slurmkit:([0-9a-f]+):([^:\s"]+):([0-9a-f]+)"?/.exec(line);
    if (!m || !line.startsWith('-A ')) continue;
    // iptables -S quotes comments with spaces only; ours have none, so splitting is safe.
    out.push({ spec: line.replace(/"/g, '').split(/\s+/), clusterName: m[2]!, clusterId: m[3]!, home: m[1]! });
  }
  return out;
}

export function deleteRuleArgs(rule: LabeledRule): string[] {
  return ['-w', '-D', ...rule.spec.slice(1)];
}

/** Host ends of node veth pairs, recognised by name (sk<id>n<index>). */
export async function listNodeLinks(): Promise<{ name: string; clusterId: string }[]> {
  const { stdout } = await run('ip', ['-j', 'link', 'show', 'type', 'veth']);
  const out: { name: string; clusterId: string }[] = [];
  for (const l of JSON.parse(stdout || '[]') as IpLink[]) {
    const m = /^sk([0-9a-f]{6})n\d+$/.exec(l.ifname);
    if (m) out.push({ name: l.ifname, clusterId: m[1]! });
  }
  return out;
}
