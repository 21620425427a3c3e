/**
 * Sandboxed partitions on the docker provider, on an engine of this file's own (the suite:
 * testing/sandbox-suite.ts): the same escapes refused, limits enforced and nodes left clean as
 * on the local provider, with bubblewrap inside the node containers.
 */
import { after, before } from 'node:test';
import { engineLeftovers, useTestEngine } from '../testing/dockerd.js';
import { sandboxSuite } from '../testing/sandbox-suite.js';

const { skip, engine } = await useTestEngine({ before, after });
sandboxSuite('docker', (id) => engineLeftovers(engine().docker, id), { skip });
