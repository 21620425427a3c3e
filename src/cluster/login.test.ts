/** The course template's login node, Jupyter and run(fn) on the local provider (the suite: testing/course-suite.ts). */
import { courseSuite } from '../testing/course-suite.js';

courseSuite('local');
