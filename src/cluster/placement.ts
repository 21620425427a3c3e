/**
 * Which host each node runs on, for providers of several hosts: the head on the host the spec
 * names (the first by default), workers spread over the hosts in turn, one per host before any
 * host gets a second (as cfiddle-cluster places one worker per machine), skipping hosts whose
 * `workers:` limit is reached. Decided once at `up` and kept in the state, so `start` brings
 * every node back where its volumes are.
 */
import type { ProviderHost, ProviderOptions } from '../providers/types.js';
import type { ClusterConfig, ProviderConfig } from '../spec/types.js';
import { SlurmkitError } from '../util/errors.js';

/** Host by node name, or undefined for providers of one machine. */
export function placeNodes(provider: ProviderConfig, head: string, workers: readonly string[]): Map<string, string> | undefined {
  if (provider.type !== 'swarm') return undefined;
  const placed = new Map<string, string>([[head, provider.head]]);
  const load = new Map(provider.hosts.map((h) => [h.name, 0]));
  let next = 0;
  for (const w of workers) {
    let host: string | undefined;
    for (let tried = 0; tried < provider.hosts.length && host === undefined; tried++) {
      const h = provider.hosts[(next + tried) % provider.hosts.length]!;
      if (load.get(h.name)! < (h.workers ?? Infinity)) {
        host = h.name;
        next = (next + tried + 1) % provider.hosts.length;
      }
    }
    // The spec check refuses too little room before this runs.
    if (host === undefined) throw new SlurmkitError('SPEC_INVALID', `provider.hosts: no host has room for worker ${w} (raise workers: on a host)`);
    load.set(host, load.get(host)! + 1);
    placed.set(w, host);
  }
  return placed;
}

/** What the provider is made with (a swarm's hosts and registry), or undefined for providers of one machine. */
export function optionsOf(provider: ProviderConfig): ProviderOptions | undefined {
  const hosts = hostsOf(provider);
  if (!hosts || provider.type !== 'swarm') return undefined;
  return { hosts, ...(provider.registry ? { registry: provider.registry } : {}) };
}

/** How the provider reaches each host (a swarm's engines), or undefined for providers of one machine. */
export function hostsOf(provider: ProviderConfig): ProviderHost[] | undefined {
  if (provider.type !== 'swarm') return undefined;
  return provider.hosts.map(({ name, endpoint, tlsCertPath }) => ({ name, endpoint, ...(tlsCertPath ? { tlsCertPath } : {}) }));
}

/**
 * The cluster `up` makes when some hosts of a swarm do not answer: the nodes placed on them are
 * left out (the others are placed over the hosts that answer), as long as every group keeps at
 * least its minNodes and every partition a node. Otherwise PRECONDITION naming what is missing.
 */
export function withoutHosts(config: ClusterConfig, lost: readonly { host: string; detail: string }[]): { config: ClusterConfig; left: string[] } {
  const provider = config.provider;
  if (provider.type !== 'swarm' || lost.length === 0) return { config, left: [] };
  const gone = new Set(lost.map((l) => l.host));
  const names = lost.map((l) => l.host).join(', ');
  const seen = lost.map((l) => `host ${l.host}: ${l.detail}`).join('; ');
  const hint = `bring ${names} back (slurmkit doctor -f <spec> checks each host), or let up go on with fewer nodes: nodes[].minNodes`;
  if (gone.has(provider.head)) {
    throw new SlurmkitError('PRECONDITION', `host ${provider.head}, where the head runs, does not answer (${seen})`, { hint: `bring ${provider.head} back, or put the head on another host: provider.head` });
  }
  const placed = placeNodes(provider, config.head.hostname, config.nodes.map((n) => n.name))!;
  const left = config.nodes.filter((n) => gone.has(placed.get(n.name)!)).map((n) => n.name);
  const kept = config.nodes.filter((n) => !left.includes(n.name));
  const short = config.groups.flatMap((g, i) => {
    const have = kept.filter((n) => n.group === g.name).length;
    const min = g.minNodes ?? g.count;
    return have < min ? [`group ${g.name} would have ${have} of its ${g.count} nodes, fewer than ${g.minNodes === undefined ? 'all (no nodes[' + i + '].minNodes)' : `nodes[${i}].minNodes (${min})`}`] : [];
  });
  const partitions = config.partitions.map((p) => ({ ...p, nodes: p.nodes.filter((n) => !left.includes(n)) }));
  const empty = partitions.filter((p) => p.nodes.length === 0).map((p) => `partition ${p.name} would have no node`);
  if (short.length + empty.length > 0) {
    throw new SlurmkitError('PRECONDITION', `${seen}; without ${lost.length === 1 ? 'it' : 'them'}, ${[...short, ...empty].join('; ')}`, { hint });
  }
  return {
    config: { ...config, provider: { ...provider, hosts: provider.hosts.filter((h) => !gone.has(h.name)) }, nodes: kept, partitions },
    left,
  };
}

/**
 * Hosts for workers added to a running cluster, for providers of several hosts: each goes to the
 * host (of those the cluster uses) with the fewest workers and room left under its `workers:`
 * limit, the spec's order breaking ties. PRECONDITION when no host has room.
 */
export function placeAdded(provider: ProviderConfig, used: readonly string[], workersOn: readonly (string | undefined)[], count: number): string[] | undefined {
  if (provider.type !== 'swarm') return undefined;
  const hosts = provider.hosts.filter((h) => used.includes(h.name));
  const load = new Map(hosts.map((h) => [h.name, workersOn.filter((w) => w === h.name).length]));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const open = hosts.filter((h) => load.get(h.name)! < (h.workers ?? Infinity));
    if (open.length === 0) {
      throw new SlurmkitError('PRECONDITION', `no host has room for ${count - i} more worker(s): every host is at its provider.hosts[].workers limit`, {
        hint: 'raise workers: on a host in the spec, or add fewer nodes',
      });
    }
    const host = open.reduce((a, b) => (load.get(b.name)! < load.get(a.name)! ? b : a));
    load.set(host.name, load.get(host.name)! + 1);
    out.push(host.name);
  }
  return out;
}
