/**
 * The course template (login node, Jupyter, run(fn) into the sandboxed partition) and the sandbox
 * suite on the docker provider, on one engine of this file's own (the suites: testing/course-suite.ts
 * and testing/sandbox-suite.ts): the same escapes refused, limits enforced and nodes left clean
 * as on the local provider, with bubblewrap inside the node containers.
 */
import { after, before } from 'node:test';
import { engineLeftovers, useTestEngine } from '../testing/dockerd.js';
import { courseSuite } from '../testing/course-suite.js';
import { sandboxSuite } from '../testing/sandbox-suite.js';

const { skip, engine } = await useTestEngine({ before, after });
courseSuite('docker', { skip });
sandboxSuite('docker', (id) => engineLeftovers(engine().docker, id), { skip });
