/**
 * The machine contract on a real Docker engine: the conformance suite run against
 * DockerProvider, on an engine this file starts (Debian's dockerd) and stops. The node image is
 * built from Debian's packages the first time (about a minute) and taken from the cache after.
 */
import { after, before, describe } from 'node:test';
import { providerConformance } from '../conformance.js';
import { DockerProvider } from './provider.js';
import { LABEL } from './engine.js';
import { useTestEngine } from '../../testing/dockerd.js';
import { run } from '../../util/run.js';

// The engine and the node image once, before the checks' own timeouts start.
const { skip, engine } = await useTestEngine({ before, after });

describe('docker engine for the conformance suite', { skip }, () => {
  providerConformance('docker', () => new DockerProvider(), {
    // Found from the engine and the host's links, without the provider.
    leftovers: async (label) => {
      const docker = engine().docker;
      const filters = { label: [`${LABEL.id}=${label.id}`] };
      const [containers, networks, volumes] = await Promise.all([
        docker.listContainers({ all: true, filters }),
        docker.listNetworks({ filters }),
        docker.listVolumes({ filters }),
      ]);
      const links = (await run('ip', ['-o', 'link', 'show'], { allowFailure: true })).stdout
        .split('\n')
        .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
        .filter((l) => l === `skd${label.id}`);
      return [
        ...containers.map((c) => `container ${c.Names[0]?.replace(/^\//, '')}`),
        ...networks.map((n) => `network ${n.Name}`),
        ...(volumes.Volumes ?? []).map((v) => `volume ${v.Name}`),
        ...links.map((l) => `link ${l}`),
      ];
    },
    reportedResources: async () => [/^container /, /^network /],
    bootTimeoutMs: 30_000,
    knownGaps: {},
  });
});
