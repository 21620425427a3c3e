import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolveSpec } from '../spec/load.js';
import { up } from './lifecycle.js';
import { ClusterPaths } from './paths.js';
import { restRequest } from './rest.js';
import { restSocket } from './site.js';
import { cleanupHome, useTempHome } from '../testing/harness.js';

describe('Slurm REST API', () => {
  let home: string;
  before(async () => {
    home = await useTempHome();
    const raw = { name: 'trest', nodes: [{ name: 'c', count: 2 }], rest: true };
    await up({ config: resolveSpec(raw, 'test'), specText: JSON.stringify(raw) });
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('answers with a token through its socket, and lists the nodes', async () => {
    const r = await restRequest('trest', 'GET', '/nodes');
    assert.equal(r.status, 200);
    const nodes = (r.body as { nodes: { name: string; state: string }[] }).nodes;
    assert.deepEqual(nodes.map((n) => n.name).sort(), ['c1', 'c2']);
  });

  test('refuses requests without a token, and only root can reach the socket', async () => {
    const socketPath = restSocket(ClusterPaths.of('trest'));
    const status = await new Promise<number>((resolve, reject) => {
      request({ socketPath, path: '/slurm/v0.0.38/nodes' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.notEqual(status, 200);
    assert.equal((await stat(dirname(socketPath))).mode & 0o777, 0o700);
  });
});
