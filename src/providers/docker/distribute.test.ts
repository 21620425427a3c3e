/**
 * Several Docker hosts joined into a swarm (src/testing/swarm.ts: engines in network namespaces
 * of their own on a bridge the test makes), and the node image with slurmkit's program reaching
 * every one of them without a registry, checked by content. Needs root and dockerd.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { distributeImage, ensureImage, ensureRuntime } from './image.js';
import { haveDockerd } from '../../testing/dockerd.js';
import { hostSnapshot } from '../../testing/harness.js';
import { netnsNames, startTestSwarm, type TestSwarm } from '../../testing/swarm.js';

const skip = (await haveDockerd()) ? false : 'dockerd is not installed (scripts/setup.sh installs docker.io)';

/** Runs `cmd` in a container of `image` on `docker`, attached to `network`; its exit code and output. */
async function runOn(docker: Docker, image: string, network: string, cmd: string[]): Promise<{ code: number; out: string }> {
  const container = await docker.createContainer({ Image: image, Cmd: cmd, Tty: true, HostConfig: { NetworkMode: network } });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    return { code: StatusCode, out: ((await container.logs({ stdout: true, stderr: true })) as Buffer).toString('utf8') };
  } finally {
    await container.remove({ force: true });
  }
}

describe('a swarm of three hosts on this machine', { skip }, () => {
  let swarm: TestSwarm;
  let before_: Awaited<ReturnType<typeof hostSnapshot>>;
  let netnsBefore: string[];

  before(async () => {
    before_ = await hostSnapshot();
    netnsBefore = await netnsNames();
    swarm = await startTestSwarm(3);
  });

  after(async () => {
    await swarm?.stop();
  });

  test('the engines are one swarm: a manager and two workers, each with its own address', async () => {
    const nodes = (await swarm.hosts[0]!.engine.docker.listNodes()) as { ID: string; Status: { State: string; Addr: string }; Spec: { Role: string } }[];
    assert.deepEqual(
      nodes.map((n) => `${n.Spec.Role} ${n.Status.State} ${n.Status.Addr}`).sort(),
      swarm.hosts.map((h, i) => `${i === 0 ? 'manager' : 'worker'} ready ${h.address}`).sort(),
    );
    assert.deepEqual(nodes.map((n) => n.ID).sort(), swarm.hosts.map((h) => h.nodeId).sort());
  });

  test('the node image with slurmkit\'s program reaches every engine without a registry, once, with the same content', { timeout: 600_000 }, async () => {
    const [first, ...others] = swarm.hosts;
    const image = await ensureRuntime(first!.engine.docker, await ensureImage(first!.engine.docker));
    const t0 = performance.now();
    const loaded = await distributeImage(first!.engine.docker, others.map((h) => ({ name: h.name, docker: h.engine.docker })), image.tag);
    console.log(`# loaded ${image.tag} into ${loaded.length} engines in ${Math.round(performance.now() - t0)} ms`);
    assert.deepEqual(loaded.sort(), ['h2', 'h3']);
    const ids = await Promise.all(swarm.hosts.map(async (h) => (await h.engine.docker.getImage(image.tag).inspect()).Id));
    assert.equal(new Set(ids).size, 1, ids.join(' '));
    // Checked by content: a second time, nothing is loaded.
    assert.deepEqual(await distributeImage(first!.engine.docker, others.map((h) => ({ name: h.name, docker: h.engine.docker })), image.tag), []);

    // Containers on different hosts reach each other over an attachable overlay network.
    const network = `sk-test-${randomBytes(3).toString('hex')}`;
    await first!.engine.docker.createNetwork({ Name: network, Driver: 'overlay', Attachable: true, IPAM: { Driver: 'default', Config: [{ Subnet: '10.220.7.0/24' }] } });
    try {
      // A listener on h3 at a fixed address; a client on h1 reads its greeting.
      const listener = await swarm.hosts[2]!.engine.docker.createContainer({
        Image: image.tag,
        Cmd: [process.execPath, '-e', "require('net').createServer((s) => s.end('hello from h3\\n')).listen(7000)"],
        HostConfig: { NetworkMode: network },
        NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: '10.220.7.30' } } } },
      });
      await listener.start();
      try {
        const r = await runOn(first!.engine.docker, image.tag, network, [
          'bash',
          '-c',
          'for i in $(seq 100); do exec 3<>/dev/tcp/10.220.7.30/7000 2>/dev/null && { read -r line <&3; echo "$line"; exit 0; }; sleep 0.2; done; exit 1',
        ]);
        assert.equal(r.code, 0, r.out);
        assert.equal(r.out.trim(), 'hello from h3');
      } finally {
        await listener.remove({ force: true });
      }
    } finally {
      await first!.engine.docker.getNetwork(network).remove().catch(() => undefined);
    }
  });

  test('stop leaves nothing on this machine: no namespace, bridge, veth, mount or firewall rule', async () => {
    await swarm.stop();
    assert.deepEqual(await netnsNames(), netnsBefore);
    const after_ = await hostSnapshot();
    assert.deepEqual(after_.links, before_.links);
    assert.deepEqual(after_.forward, before_.forward);
    assert.deepEqual(after_.files, before_.files);
    assert.equal(after_.mounts, before_.mounts);
  });
});
