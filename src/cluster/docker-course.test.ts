/**
 * The course template's login node, Jupyter and run(fn) on the docker provider, on an engine of
 * this file's own (the suite: testing/course-suite.ts).
 */
import { after, before } from 'node:test';
import { useTestEngine } from '../testing/dockerd.js';
import { courseSuite } from '../testing/course-suite.js';

const { skip } = await useTestEngine({ before, after });
courseSuite('docker', { skip });
