import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolveSpec } from '../spec/load.js';
import { up } from './lifecycle.js';
import { ClusterPaths } from './paths.js';
import { REST_API, restRequest } from './rest.js';
import { restSocket } from './site.js';
import { run } from '../util/run.js';
import { cleanupHome, useTempHome } from '../testing/harness.js';

/** A GET straight to the socket with only the headers given: no token unless the test adds one. */
function rawGet(socketPath: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ socketPath, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

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

  test('refuses a request without a token with 401, on a path that answers 200 with one', async () => {
    const socketPath = restSocket(ClusterPaths.of('trest'));
    const path = `${REST_API}/nodes`;
    // The same path with a token is served, so a 401 below is the missing token, not a wrong path.
    assert.equal((await restRequest('trest', 'GET', path)).status, 200);
    const bare = await rawGet(socketPath, path);
    assert.equal(bare.status, 401, `without a token: ${bare.status} ${bare.body}`);
    const named = await rawGet(socketPath, path, { 'X-SLURM-USER-NAME': 'root' });
    assert.equal(named.status, 401, `a user name without a token: ${named.status} ${named.body}`);
  });

  test('only root can reach the socket: its folder is root-owned 0700 and another user is refused', async () => {
    const socketPath = restSocket(ClusterPaths.of('trest'));
    const folder = await stat(dirname(socketPath));
    assert.equal(folder.uid, 0);
    assert.equal(folder.mode & 0o777, 0o700);
    // Connect as nobody on the host: the folder's mode must stop it before slurmrestd sees it.
    const probe = `require('net').connect(${JSON.stringify(socketPath)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const asNobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe]);
    assert.equal(asNobody.stdout.trim(), 'EACCES');
    // The same probe as root connects, so EACCES above is the folder, not a missing socket.
    const asRoot = await run(process.execPath, ['-e', probe]);
    assert.equal(asRoot.stdout.trim(), 'connected');
  });
});
