/**
 * The course template (login node, Jupyter, run(fn) into the sandboxed partition) and the sandbox
 * suite on provider swarm: three hosts (Docker engines in network namespaces of their own,
 * src/testing/swarm.ts) that `up` joins into one swarm, the nodes spread over them. Jupyter is
 * reached through the port the swarm's host publishes. Needs root and dockerd.
 */
import { after, before } from 'node:test';
import { haveDockerd } from '../testing/dockerd.js';
import { startTestSwarm, swarmLeftovers, type TestSwarm } from '../testing/swarm.js';
import { courseSuite } from '../testing/course-suite.js';
import { sandboxSuite } from '../testing/sandbox-suite.js';

const skip = (await haveDockerd()) ? false : 'dockerd is not installed (scripts/setup.sh installs docker.io)';
let swarm: TestSwarm | undefined;
before(async () => {
  if (!skip) swarm = await startTestSwarm(3, { join: false, registry: true });
});
after(async () => {
  await swarm?.stop();
});

/** The spec's provider: the test swarm's hosts, the node image through its registry. */
const providerYaml = () =>
  [`type: swarm`, `registry: "${swarm!.registry}"`, 'hosts:', ...swarm!.hosts.map((h) => `  - {name: ${h.name}, endpoint: "${h.engine.host}"}`)].join('\n');

courseSuite('swarm', { skip, providerYaml });
sandboxSuite('swarm', (id) => swarmLeftovers(swarm!, id), { skip, providerYaml });
