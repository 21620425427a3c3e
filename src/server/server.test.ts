/**
 * The management API on a real cluster that the API itself creates: auth, every route of the
 * OpenAPI document, operations followed over Server-Sent Events, jobs, blob storage and a
 * batch run, scaling, stop/start, metrics, and a destroy that leaves nothing behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { run } from '../util/run.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { cleanupHome, leftoversOf, useTempHome } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { photo } from '../jobs/images.js';
import { isGrayscale } from '../jobs/grayscale.js';
import { rotateToken, tokenPath } from './auth.js';
import { startServer, type RunningServer } from './serve.js';

const CLUSTER = 'tapi';
const SPEC = `name: ${CLUSTER}
nodes:
  - name: c
    count: 2
accounting: true
users:
  - name: alice
`;

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('slurmkit serve: the REST API on a real cluster', () => {
  let home: string;
  let server: RunningServer;
  let token: string;
  /** Every "METHOD /path/{template}" answered with a 2xx, to check that each route of the document was exercised. */
  const exercised = new Set<string>();

  /** A request to a route given by its template (as in /openapi.json) and the values of its parameters. */
  async function api(method: string, template: string, opts: { params?: Record<string, string>; query?: Record<string, string>; json?: unknown; body?: Buffer; contentType?: string; auth?: string | null; signal?: AbortSignal } = {}) {
    let path = template;
    for (const [k, v] of Object.entries(opts.params ?? {})) path = path.replace(`{${k}}`, encodeURIComponent(v));
    const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : '';
    const headers: Record<string, string> = {};
    const auth = opts.auth === undefined ? token : opts.auth;
    if (auth !== null) headers['authorization'] = `Bearer ${auth}`;
    let body: string | Uint8Array | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.body) {
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
      body = new Uint8Array(opts.body);
    }
    const res = await fetch(`${server.url}/api/v1${path}${qs}`, { method, headers, ...(body === undefined ? {} : { body }), ...(opts.signal ? { signal: opts.signal } : {}) });
    if (res.ok) exercised.add(`${method} /api/v1${template}`);
    return res;
  }
  async function ok(method: string, template: string, opts: Parameters<typeof api>[2] = {}, status = 200): Promise<Json> {
    const res = await api(method, template, opts);
    const text = await res.text();
    assert.equal(res.status, status, `${method} ${template}: ${res.status} ${text}`);
    return res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text;
  }

  /** Follows an operation's event stream to its end; returns the events and the operation. */
  async function follow(id: string): Promise<{ events: Json[]; operation: Json }> {
    const res = await api('GET', '/operations/{id}/events', { params: { id } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await res.text();
    const events: Json[] = [];
    let operation: Json;
    for (const block of text.split('\n\n')) {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === 'progress') events.push(JSON.parse(data!));
      if (event === 'end') operation = JSON.parse(data!);
    }
    assert.ok(operation, `no end event in: ${text.slice(0, 500)}`);
    return { events, operation };
  }
  async function succeeded(op: Json): Promise<{ events: Json[]; operation: Json }> {
    assert.equal(op.status, 'running');
    const { events, operation } = await follow(op.id);
    assert.equal(operation.status, 'succeeded', JSON.stringify(operation.error));
    return { events, operation };
  }
  async function succeededOrFailed(op: Json): Promise<Json> {
    return (await follow(op.id)).operation;
  }
  async function jobEnds(id: string): Promise<Json> {
    for (let i = 0; i < 300; i++) {
      const j = await ok('GET', '/clusters/{cluster}/jobs/{job}', { params: { cluster: CLUSTER, job: id } });
      if (!['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING'].includes(j.state)) return j;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(`job ${id} did not end in 60 s`);
  }

  before(async () => {
    home = await useTempHome();
    server = await startServer({ port: 0 });
    assert.ok(server.newToken, 'the first start makes a token');
    token = server.newToken!;
  });
  after(async () => {
    await server?.close();
    await cleanupHome(home);
  });

  test('the token file is the owner\'s only, and requests without the right token get 401 with no detail', async () => {
    assert.equal((await stat(tokenPath())).mode & 0o777, 0o600);
    // The right token is served, so each 401 below is the token's doing.
    await ok('GET', '/clusters');
    const tampered = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    for (const [what, auth] of [['no token', null], ['a wrong token', 'skt_wrong'], ['a tampered token', tampered], ['an empty token', '']] as const) {
      const res = await api('GET', '/clusters', { auth });
      assert.equal(res.status, 401, what);
      assert.deepEqual((await res.json()) as Json, { error: { code: 'UNAUTHORIZED', message: 'unauthorized', details: [] } }, what);
    }
    const metrics = await fetch(`${server.url}/metrics`);
    assert.equal(metrics.status, 401, 'metrics need the token too');
    await metrics.text();
  });

  test('a rotated token stops working at once in the running server; the new one works', async () => {
    const old = token;
    token = await rotateToken();
    assert.notEqual(token, old);
    assert.equal((await api('GET', '/clusters', { auth: old })).status, 401);
    await ok('GET', '/clusters');
    // And through the CLI, as a user rotates it.
    const r = await runCli(['token', '--rotate', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    const rotated = JSON.parse(r.stdout).token as string;
    assert.equal((await api('GET', '/clusters', { auth: token })).status, 401);
    token = rotated;
    await ok('GET', '/clusters');
  });

  test('serve refuses a non-loopback host without TLS, saying why and how, and a bad port', async () => {
    const open = await runCli(['serve', '--host', '0.0.0.0', '--port', '0'], { home, timeoutMs: 20_000 });
    assert.equal(open.code, 2, open.stderr);
    assert.match(open.stderr, /--host 0\.0\.0\.0 is reachable from other machines.*clear text/);
    assert.match(open.stderr, /hint: give --tls-cert FILE --tls-key FILE, or --insecure-http/);
    const port = await runCli(['serve', '--port', '70000'], { home, timeoutMs: 20_000 });
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--port 70000/);
  });

  test('with --tls-cert and --tls-key it serves HTTPS only, with that certificate, on a non-loopback host too', async () => {
    const dir = await mkdtemp(join(home, 'tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=slurmkit-test', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const pem = await readFile(cert);
    // Bad TLS arguments are refused by name, before anything listens.
    const half = await runCli(['serve', '--port', '0', '--tls-cert', cert], { home, timeoutMs: 20_000 });
    assert.equal(half.code, 2, half.stderr);
    assert.match(half.stderr, /give both --tls-cert and --tls-key/);
    const missing = await runCli(['serve', '--port', '0', '--tls-cert', join(dir, 'nope.pem'), '--tls-key', key], { home, timeoutMs: 20_000 });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--tls-cert .*nope\.pem: cannot be read \(ENOENT\)/);

    const tls = await startServer({ host: '0.0.0.0', port: 0, tlsCert: cert, tlsKey: key });
    try {
      assert.match(tls.url, /^https:\/\/0\.0\.0\.0:\d+$/);
      const port = Number(new URL(tls.url).port);
      const current = (await readFile(tokenPath(), 'utf8')).trim();
      const get = (o: { ca?: Buffer; auth?: string }) =>
        new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
          const req = httpsRequest(
            { host: '127.0.0.1', port, path: '/api/v1/clusters', headers: o.auth ? { authorization: `Bearer ${o.auth}` } : {}, ...(o.ca ? { ca: o.ca } : {}) },
            (res) => {
              const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
            },
          );
          req.on('error', reject);
          req.end();
        });
      const trusted = await get({ ca: pem, auth: current });
      assert.equal(trusted.status, 200, trusted.body);
      assert.ok(Array.isArray(JSON.parse(trusted.body)), trusted.body);
      assert.equal(trusted.fingerprint, new X509Certificate(pem).fingerprint256, 'the certificate given is the one served');
      assert.equal((await get({ ca: pem })).status, 401, 'the token is still required');
      await assert.rejects(get({ auth: current }), (err: NodeJS.ErrnoException) => err.code === 'DEPTH_ZERO_SELF_SIGNED_CERT', 'a client that does not trust it is refused');
      await assert.rejects(fetch(`http://127.0.0.1:${port}/api/v1/clusters`, { headers: { authorization: `Bearer ${current}` } }), 'no plain HTTP on the TLS port');
    } finally {
      await tls.close();
    }
  });

  test('the OpenAPI document is valid OpenAPI 3.1 and is served without a token', async () => {
    const res = await fetch(`${server.url}/openapi.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Json;
    const v = await new Validator().validate(doc);
    assert.ok(v.valid, JSON.stringify(v.errors)?.slice(0, 2000));
    const routes = Object.values(doc.paths as Record<string, object>).flatMap((methods) => Object.keys(methods));
    assert.ok(routes.length >= 30, `${routes.length} routes`);
  });

  test('bad requests get 400 naming the field, and change nothing', async () => {
    const bad = await api('POST', '/clusters', { json: { spec: `name: ${CLUSTER}\nnodes:\n  - name: c\n    count: 0\n` } });
    assert.equal(bad.status, 400);
    const e = ((await bad.json()) as Json).error;
    assert.equal(e.code, 'SPEC_INVALID');
    assert.ok(e.details.some((d: string) => d.includes('nodes[0].count') || d.includes('nodes.0.count')), JSON.stringify(e));
    const unknown = await api('POST', '/clusters', { json: { template: 'minimal', colour: 'red' } });
    assert.equal(unknown.status, 400);
    assert.match(JSON.stringify((await unknown.json()) as Json), /colour/);
    const provider = await api('POST', '/clusters', { json: { template: 'minimal', provider: 'cloud9' } });
    assert.equal(provider.status, 400);
    assert.match(((await provider.json()) as Json).error.message, /provider cloud9: no such provider/);
    assert.deepEqual(await ok('GET', '/clusters'), [], 'nothing was created');
    assert.deepEqual(await ok('GET', '/operations'), [], 'nothing was started');
  });

  test('create: 202 with an operation at once, phases streamed over SSE, then a running cluster with idle workers', async () => {
    const op = await ok('POST', '/clusters', { json: { spec: SPEC } }, 202);
    assert.equal(op.kind, 'create');
    assert.equal(op.cluster, CLUSTER);
    const { events, operation } = await succeeded(op);
    const phases = events.filter((e) => e.type === 'phase').map((e) => e.phase);
    assert.ok(phases.length >= 3, JSON.stringify(events));
    assert.ok(events.every((e) => e.type !== 'phase' || (e.ok === true && e.ms >= 0)));
    assert.deepEqual(operation.result, { name: CLUSTER, phase: 'running' });
    // The operation is kept, with the same events.
    const again = await ok('GET', '/operations/{id}', { params: { id: op.id } });
    assert.equal(again.events.length, events.length);
    const clusters = await ok('GET', '/clusters');
    assert.deepEqual(clusters.map((c: Json) => [c.name, c.phase]), [[CLUSTER, 'running']]);
    const shown = await ok('GET', '/clusters/{cluster}', { params: { cluster: CLUSTER } });
    assert.ok(shown.timings.length > 0);
    const nodes = await ok('GET', '/clusters/{cluster}/nodes', { params: { cluster: CLUSTER } });
    assert.deepEqual(nodes.filter((n: Json) => n.role === 'worker').map((n: Json) => [n.name, n.slurmState]), [['c1', 'idle'], ['c2', 'idle']]);
    assert.deepEqual(await ok('GET', '/clusters/{cluster}/partitions', { params: { cluster: CLUSTER } }), [
      { name: 'all', default: true, available: 'up', timeLimit: 'infinite', nodes: { allocated: 0, idle: 2, other: 0, total: 2 }, nodeList: 'c[1-2]' },
    ]);
    // The live stream's first snapshot is the cluster as it is now.
    const ac = new AbortController();
    const live = await api('GET', '/clusters/{cluster}/live', { params: { cluster: CLUSTER }, signal: ac.signal });
    assert.equal(live.status, 200);
    const reader = live.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    const snap = JSON.parse(/^data: (.*)$/m.exec(text)![1]!);
    assert.equal(snap.cluster.name, CLUSTER);
    assert.deepEqual(snap.queue, []);
    assert.equal(snap.partitions[0].name, 'all');
    const again2 = await api('POST', '/clusters', { json: { spec: SPEC } });
    assert.equal(again2.status, 409, 'a second cluster of the same name is refused before anything starts');
    assert.match(((await again2.json()) as Json).error.message, /already exists/);
    const missing = await api('GET', '/clusters/{cluster}', { params: { cluster: 'nosuch' } });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as Json).error.code, 'NOT_FOUND');
  });

  test('jobs: submit as a cluster user, see it in the queue, read its output, find it in the history; cancel another', async () => {
    const sub = await ok('POST', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER }, json: { script: '#!/bin/bash\n#SBATCH -N2\nsrun hostname | sort\necho "user=$(id -un)"\n', user: 'alice', name: 'hello' } }, 201);
    assert.match(sub.id, /^\d+$/);
    assert.equal(sub.user, 'alice');
    const done = await jobEnds(sub.id);
    assert.equal(done.state, 'COMPLETED');
    assert.equal(done.user, 'alice');
    const out = await ok('GET', '/clusters/{cluster}/jobs/{job}/output', { params: { cluster: CLUSTER, job: sub.id } });
    assert.equal(out, 'c1\nc2\nuser=alice\n');

    const long = await ok('POST', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER }, json: { script: '#!/bin/bash\nsleep 300\n' } }, 201);
    assert.equal(long.user, 'root');
    let queued: Json[] = [];
    for (let i = 0; i < 50 && !queued.some((j) => j.id === long.id && j.state === 'RUNNING'); i++) {
      queued = await ok('GET', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER } });
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(queued.some((j) => j.id === long.id && j.state === 'RUNNING'), JSON.stringify(queued));
    assert.deepEqual(await ok('DELETE', '/clusters/{cluster}/jobs/{job}', { params: { cluster: CLUSTER, job: long.id } }), { cancelled: long.id });
    assert.equal((await jobEnds(long.id)).state, 'CANCELLED');

    let history: Json[] = [];
    for (let i = 0; i < 50; i++) {
      history = await ok('GET', '/clusters/{cluster}/history', { params: { cluster: CLUSTER }, query: { since: 'now-1hour' } });
      if (history.some((j) => j.id === long.id && j.state === 'CANCELLED')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const mine = history.find((j) => j.id === sub.id);
    assert.deepEqual([mine?.user, mine?.state, mine?.name], ['alice', 'COMPLETED', 'hello']);
    assert.ok(history.some((j) => j.id === long.id && j.state === 'CANCELLED'), JSON.stringify(history));

    const call = await ok('POST', '/clusters/{cluster}/calls', { params: { cluster: CLUSTER }, json: { source: '(a, b) => a + b', args: [2, 3], user: 'alice' } }, 201);
    assert.equal(call.user, 'alice');
    assert.equal((await jobEnds(call.job)).state, 'COMPLETED');
    assert.deepEqual(await ok('GET', '/clusters/{cluster}/calls/{call}', { params: { cluster: CLUSTER, call: call.call } }), { done: true, result: { ok: true, value: 5 } });

    const notScript = await api('POST', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER }, json: { script: 'hostname' } });
    assert.equal(notScript.status, 400);
    assert.match(((await notScript.json()) as Json).error.message, /^script: /);
    const stranger = await api('POST', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER }, json: { script: '#!/bin/bash\ntrue\n', user: 'mallory' } });
    assert.equal(stranger.status, 404);
    assert.match(((await stranger.json()) as Json).error.message, /no user "mallory"/);
    const noJob = await api('GET', '/clusters/{cluster}/jobs/{job}', { params: { cluster: CLUSTER, job: '999999' } });
    assert.equal(noJob.status, 404);
  });

  test('blob storage and a batch run: upload photos, convert them over the workers with progress, download gray results', async () => {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await photo(i);
      const info = await ok('PUT', '/clusters/{cluster}/blob/containers/{container}/blob', { params: { cluster: CLUSTER, container: 'photos' }, query: { name: `in/${p.name}` }, body: p.data, contentType: 'image/jpeg' }, 201);
      assert.equal(info.size, p.data.length);
      names.push(`in/${p.name}`);
    }
    const containers = await ok('GET', '/clusters/{cluster}/blob/containers', { params: { cluster: CLUSTER } });
    assert.deepEqual(containers.map((c: Json) => c.name), ['photos']);
    const listed = await ok('GET', '/clusters/{cluster}/blob/containers/{container}/blobs', { params: { cluster: CLUSTER, container: 'photos' } });
    assert.deepEqual(listed.map((b: Json) => b.name), names);

    // A missing output container fails the run and changes nothing; made, the run goes through.
    const noOutput = await succeededOrFailed(await ok('POST', '/clusters/{cluster}/batch', { params: { cluster: CLUSTER }, json: { input: 'photos', output: 'grays', builtin: 'grayscale' } }, 202));
    assert.equal(noOutput.status, 'failed');
    assert.equal(noOutput.error.code, 'NOT_FOUND');
    assert.deepEqual((await ok('GET', '/clusters/{cluster}/blob/containers', { params: { cluster: CLUSTER } })).map((c: Json) => c.name), ['photos']);
    assert.deepEqual(await ok('PUT', '/clusters/{cluster}/blob/containers/{container}', { params: { cluster: CLUSTER, container: 'grays' } }), { container: 'grays', created: true });
    const op = await ok('POST', '/clusters/{cluster}/batch', { params: { cluster: CLUSTER }, json: { input: 'photos', output: 'grays', builtin: 'grayscale' } }, 202);
    const { events, operation } = await succeeded(op);
    const counts = events.filter((e) => e.type === 'count');
    assert.ok(counts.length > 0 && counts.at(-1).done === 4 && counts.at(-1).total === 4, JSON.stringify(counts));
    assert.equal(operation.result.converted ?? operation.result.done ?? 4, 4);

    const small = await api('GET', '/clusters/{cluster}/blob/containers/{container}/thumbnail', { params: { cluster: CLUSTER, container: 'grays' }, query: { name: names[0]!, width: '64' } });
    assert.equal(small.status, 200);
    const { sharp } = await import('../jobs/sharp.js');
    const meta = await sharp(Buffer.from(await small.arrayBuffer())).metadata();
    assert.ok(meta.format === 'jpeg' && (meta.width ?? 0) <= 64 && (meta.height ?? 0) <= 64, JSON.stringify(meta));

    const gray = await api('GET', '/clusters/{cluster}/blob/containers/{container}/blob', { params: { cluster: CLUSTER, container: 'grays' }, query: { name: names[0]! } });
    assert.equal(gray.status, 200);
    assert.equal(gray.headers.get('content-type'), 'image/jpeg');
    assert.ok(await isGrayscale(Buffer.from(await gray.arrayBuffer())), 'the downloaded output is grayscale');
    const missing = await api('GET', '/clusters/{cluster}/blob/containers/{container}/blob', { params: { cluster: CLUSTER, container: 'grays' }, query: { name: 'nope.jpg' } });
    assert.equal(missing.status, 404);
    const demo = await succeeded(await ok('POST', '/clusters/{cluster}/demo', { params: { cluster: CLUSTER } }, 202));
    assert.equal(demo.operation.result.verified, 49);
    assert.ok(demo.events.some((e) => e.type === 'count' && e.what === 'photos' && e.done === 49));

    const badBatch = await api('POST', '/clusters/{cluster}/batch', { params: { cluster: CLUSTER }, json: { input: 'photos', output: 'grays' } });
    assert.equal(badBatch.status, 400);
    assert.match(JSON.stringify((await badBatch.json()) as Json), /body\.builtin: give either builtin or command/);
  });

  test('nodes: add a worker and terminate it, each as an operation', async () => {
    const add = await ok('POST', '/clusters/{cluster}/nodes', { params: { cluster: CLUSTER }, json: { count: 1 } }, 202);
    const added = await succeeded(add);
    assert.deepEqual(added.operation.result, { nodes: ['c3'] });
    let nodes = await ok('GET', '/clusters/{cluster}/nodes', { params: { cluster: CLUSTER } });
    assert.equal(nodes.find((n: Json) => n.name === 'c3')?.slurmState, 'idle');
    const gone = await succeeded(await ok('DELETE', '/clusters/{cluster}/nodes/{node}', { params: { cluster: CLUSTER, node: 'c3' } }, 202));
    assert.deepEqual(gone.operation.result, { nodes: ['c3'], requeued: [] });
    nodes = await ok('GET', '/clusters/{cluster}/nodes', { params: { cluster: CLUSTER } });
    assert.deepEqual(nodes.filter((n: Json) => n.role === 'worker').map((n: Json) => n.name), ['c1', 'c2']);
    const head = await api('DELETE', '/clusters/{cluster}/nodes/{node}', { params: { cluster: CLUSTER, node: 'head' } });
    assert.equal(head.status, 404);
  });

  test('metrics: nodes by state, queue, operations, in Prometheus text', async () => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, new RegExp(`^slurmkit_nodes\\{cluster="${CLUSTER}",state="idle"\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^slurmkit_queue_jobs\\{cluster="${CLUSTER}",state="pending"\\} 0$`, 'm'));
    assert.match(text, new RegExp(`^slurmkit_job_wait_seconds\\{cluster="${CLUSTER}",stat="pending_max"\\} 0$`, 'm'));
    assert.match(text, /^slurmkit_operations_total\{kind="create",status="succeeded"\} 1$/m);
    assert.match(text, /^slurmkit_operation_duration_seconds_count\{kind="batch"\} 2$/m);
    assert.match(text, /^slurmkit_operations_total\{kind="batch",status="failed"\} 1$/m);
  });

  test('stop and start as operations, the cluster answering jobs again', async () => {
    await succeeded(await ok('POST', '/clusters/{cluster}/stop', { params: { cluster: CLUSTER } }, 202));
    assert.equal((await ok('GET', '/clusters/{cluster}', { params: { cluster: CLUSTER } })).phase, 'stopped');
    const refused = await api('GET', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER } });
    assert.equal(refused.status, 409);
    await succeeded(await ok('POST', '/clusters/{cluster}/start', { params: { cluster: CLUSTER } }, 202));
    assert.deepEqual(await ok('GET', '/clusters/{cluster}/jobs', { params: { cluster: CLUSTER } }), []);
  });

  test('destroy leaves nothing behind; every route of the document was exercised', async () => {
    const { id } = (await ok('GET', '/clusters/{cluster}', { params: { cluster: CLUSTER } })) as { id: string };
    await succeeded(await ok('DELETE', '/clusters/{cluster}', { params: { cluster: CLUSTER } }, 202));
    assert.deepEqual(await ok('GET', '/clusters'), []);
    assert.deepEqual(await leftoversOf(id), []);
    const ops = await ok('GET', '/operations');
    assert.deepEqual(ops.map((o: Json) => o.kind).sort(), ['add-nodes', 'batch', 'batch', 'create', 'demo', 'destroy', 'start', 'stop', 'terminate-nodes']);

    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as Json;
    const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    const missed = routes.filter((r) => !exercised.has(r));
    assert.deepEqual(missed, [], 'every route in /openapi.json answered 2xx at least once');
  });
});
