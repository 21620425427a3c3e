/** Sandboxed partitions on the local provider (the suite: testing/sandbox-suite.ts). */
import { leftoversOf } from '../testing/harness.js';
import { sandboxSuite } from '../testing/sandbox-suite.js';

sandboxSuite('local', leftoversOf);
