/**
 * The machine contract on a real Docker engine: the conformance suite run against
 * DockerProvider, on an engine this file starts (Debian's dockerd) and stops. The node image is
 * built from Debian's packages the first time (about a minute) and taken from the cache after.
 */
import { after, before, describe } from 'node:test';
import { providerConformance } from '../conformance.js';
import { DockerProvider } from './provider.js';
import { engineLeftovers, useTestEngine } from '../../testing/dockerd.js';

// The engine and the node image once, before the checks' own timeouts start.
const { skip, engine } = await useTestEngine({ before, after });

describe('docker engine for the conformance suite', { skip }, () => {
  providerConformance('docker', () => new DockerProvider(), {
    // Found from the engine and the host's links, without the provider.
    leftovers: (label) => engineLeftovers(engine().docker, label.id),
    reportedResources: async () => [/^container /, /^network /],
    bootTimeoutMs: 30_000,
    knownGaps: {},
  });
});
