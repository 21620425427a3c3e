/**
 * The machine contract on a real swarm: the conformance suite run against SwarmProvider over
 * three hosts (Docker engines in network namespaces of their own, src/testing/swarm.ts), the
 * suite's nodes placed on the hosts in turn, so that every check that uses two nodes has them
 * on two hosts. This machine does not reach the overlay network: nodes are reached from nodes.
 */
import { after, before, describe } from 'node:test';
import { providerConformance } from '../conformance.js';
import { SwarmProvider } from './provider.js';
import { engineLeftovers, haveDockerd } from '../../testing/dockerd.js';
import { startTestSwarm, type TestSwarm } from '../../testing/swarm.js';

const skip = (await haveDockerd()) ? false : 'dockerd is not installed (scripts/setup.sh installs docker.io)';
let swarm: TestSwarm | undefined;
let provider: SwarmProvider | undefined;

describe('a swarm of three hosts for the conformance suite', { skip }, () => {
  before(async () => {
    swarm = await startTestSwarm(3);
    provider = new SwarmProvider(swarm.hosts.map((h) => ({ name: h.name, endpoint: h.engine.host })));
    // The node image on every engine once, before the checks' own timeouts start.
    await provider.prepare();
  }, { timeout: 900_000 });

  after(async () => {
    await swarm?.stop();
  });

  // Asked for its capabilities while the suite is declared, before the swarm exists.
  providerConformance('swarm', () => provider ?? new SwarmProvider([]), {
    // Found on every engine without the provider.
    leftovers: async (label) => (await Promise.all(swarm!.hosts.map(async (h) => (await engineLeftovers(h.engine.docker, label.id)).map((r) => `${h.name} ${r}`)))).flat(),
    reportedResources: async () => [/^container /, /^network /],
    bootTimeoutMs: 30_000,
    hosts: ['h1', 'h2', 'h3'],
    hostReachesNodes: false,
    knownGaps: {},
  });
});
