/**
 * Which host each node runs on, for providers of several hosts: the head on the host the spec
 * names (the first by default), workers spread over the hosts in turn, one per host before any
 * host gets a second (as cfiddle-cluster places one worker per machine), skipping hosts whose
 * `workers:` limit is reached. Decided once at `up` and kept in the state, so `start` brings
 * every node back where its volumes are.
 */
import type { ProviderHost } from '../providers/types.js';
import type { ProviderConfig } from '../spec/types.js';
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

/** How the provider reaches each host (a swarm's engines), or undefined for providers of one machine. */
export function hostsOf(provider: ProviderConfig): ProviderHost[] | undefined {
  if (provider.type !== 'swarm') return undefined;
  return provider.hosts.map(({ name, endpoint, tlsCertPath }) => ({ name, endpoint, ...(tlsCertPath ? { tlsCertPath } : {}) }));
}
