/**
 * The HTTP layer: thin. Each route validates its request with the schemas that make
 * /openapi.json, calls the application layer, and maps errors through the one error table.
 */
import { OpenAPIHono, createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { streamSSE } from 'hono/streaming';
import type { Context } from 'hono';
import * as clusters from '../app/clusters.js';
import { listClusters, listNodes, readState, requireState, showCluster } from '../app/clusters.js';
import * as jobs from '../app/jobs.js';
import * as blob from '../app/blob.js';
import { batch } from '../app/batch.js';
import { resolveClusterSpec } from '../app/specs.js';
import type { Operations, OperationUpdate } from '../app/operations.js';
import { SlurmkitError, asSlurmkitError } from '../util/errors.js';
import type { TokenCheck } from './auth.js';
import type { Metrics } from './metrics.js';
import type { Live } from './live.js';
import { demoOn } from '../app/demo.js';
import { dashboardHtml } from './dashboard.js';
import * as s from './schemas.js';

export const API = '/api/v1';

export interface ServerDeps {
  operations: Operations;
  live: Live;
  tokens: TokenCheck;
  metrics: Metrics;
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });
const errors = {
  400: json(s.ErrorSchema, 'the request is invalid; the error names the field'),
  401: json(s.ErrorSchema, 'no token, or a wrong one'),
  404: json(s.ErrorSchema, 'no such cluster, node, job or blob'),
  409: json(s.ErrorSchema, 'the cluster is in the wrong state for this'),
};
const body = <T extends z.ZodType>(schema: T) => ({ body: { content: { 'application/json': { schema } }, required: true } });
const accepted = { 202: json(s.OperationSchema, 'started; follow it at /operations/{id}/events'), ...errors };
const ClusterNodeParam = s.ClusterParam.extend({ node: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/).openapi({ param: { name: 'node', in: 'path' }, example: 'c3' }) });
const ClusterJobParam = s.ClusterParam.extend({ job: z.string().regex(/^\d+(_\d+)?$/, 'a job id is a number (or an array id like 12_3)').openapi({ param: { name: 'job', in: 'path' }, example: '42' }) });
const ContainerParam = s.ClusterParam.extend({ container: z.string().min(3).max(63).openapi({ param: { name: 'container', in: 'path' }, example: 'input' }) });
const BlobQuery = z.object({ name: z.string().min(1).max(1024).openapi({ param: { name: 'name', in: 'query' }, example: 'photo-01.jpg' }) });
const OperationParam = z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }) });

const route = <R extends RouteConfig>(r: R) => createRoute({ security: [{ bearer: [] }], ...r });

/** A validation failure as 400 naming each failing field (body.count, query.name, ...). */
function invalid(issues: readonly { path: readonly PropertyKey[]; message: string }[], target: string): SlurmkitError {
  const details = issues.map((i) => `${[target === 'json' ? 'body' : target, ...i.path.map(String)].join('.')}: ${i.message}`);
  return new SlurmkitError('USAGE', `invalid request: ${details[0] ?? target}`, { details, hint: 'see /openapi.json for the request shapes' });
}

const errorResponse = (c: Context, e: SlurmkitError) => c.json(e.toJSON(), e.httpStatus as 400);

export function createApp(deps: ServerDeps): OpenAPIHono {
  const { operations, tokens } = deps;
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) return errorResponse(c, invalid(result.error.issues, result.target));
      return undefined;
    },
  });

  app.onError((err, c) => {
    if (err instanceof HTTPException) return errorResponse(c, new SlurmkitError(err.status === 401 ? 'UNAUTHORIZED' : 'USAGE', err.message || 'bad request'));
    return errorResponse(c, asSlurmkitError(err));
  });
  app.notFound((c) => errorResponse(c, new SlurmkitError('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`, { hint: 'see /openapi.json' })));

  // Every route but the document itself needs the token; a refusal says nothing more.
  const guard = async (c: Context, next: () => Promise<void>) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer (\S+)$/.exec(header);
    if (!(await tokens.accepts(m?.[1]))) {
      c.header('WWW-Authenticate', 'Bearer');
      return c.json(new SlurmkitError('UNAUTHORIZED', 'unauthorized').toJSON(), 401);
    }
    await next();
    return undefined;
  };
  app.use(`${API}/*`, guard);
  app.use('/metrics', guard);
  app.use('*', async (c, next) => {
    const t0 = performance.now();
    await next();
    deps.metrics.request(c.req.method, c.req.routePath, c.res.status, (performance.now() - t0) / 1000);
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'the token from `slurmkit token`' });

  // Clusters
  app.openapi(route({ method: 'get', path: `${API}/clusters`, summary: 'list clusters', responses: { 200: json(z.array(s.ClusterSchema), 'clusters'), ...errors } }), async (c) =>
    c.json(await listClusters(), 200),
  );
  app.openapi(route({ method: 'post', path: `${API}/clusters`, summary: 'create a cluster from a template or a spec', request: body(s.CreateClusterSchema), responses: accepted }), async (c) => {
    const req = c.req.valid('json');
    // Validated now, so a bad spec is a 400 and nothing starts.
    const { config, text } = await resolveClusterSpec(
      { template: req.template, text: req.spec, source: 'body.spec', name: req.name, provider: req.provider },
      { template: 'template', text: 'spec', provider: 'provider' },
    );
    if (await readState(config.name)) {
      throw new SlurmkitError('CONFLICT', `cluster ${config.name} already exists`, { hint: `give another name (name: in the request), or destroy it first: DELETE ${API}/clusters/${config.name}` });
    }
    const op = operations.start('create', config.name, (progress) => clusters.up({ config, specText: text, progress }).then((st) => ({ name: st.name, phase: st.phase })));
    return c.json(op, 202);
  });
  app.openapi(route({ method: 'get', path: `${API}/clusters/{cluster}`, summary: 'a cluster with its nodes, timings and scale events', request: { params: s.ClusterParam }, responses: { 200: json(s.ClusterDetailSchema, 'the cluster'), ...errors } }), async (c) =>
    c.json((await showCluster(c.req.valid('param').cluster)) as z.infer<typeof s.ClusterDetailSchema>, 200),
  );
  const lifecycle = (verb: 'stop' | 'start', summary: string, run: (name: string, p: import('../util/progress.js').Progress) => Promise<unknown>) =>
    app.openapi(route({ method: 'post', path: `${API}/clusters/{cluster}/${verb}`, summary, request: { params: s.ClusterParam }, responses: accepted }), async (c) => {
      const { cluster } = c.req.valid('param');
      await requireState(cluster);
      return c.json(operations.start(verb, cluster, (p) => run(cluster, p).then(() => ({ name: cluster }))), 202);
    });
  lifecycle('stop', 'stop every node, keeping the queue and job ids', (n, p) => clusters.stop(n, p));
  lifecycle('start', 'start a stopped cluster', (n, p) => clusters.start(n, p));
  app.openapi(route({ method: 'delete', path: `${API}/clusters/{cluster}`, summary: 'destroy a cluster, leaving nothing behind', request: { params: s.ClusterParam }, responses: accepted }), async (c) => {
    const { cluster } = c.req.valid('param');
    await requireState(cluster);
    return c.json(operations.start('destroy', cluster, (progress) => clusters.down(cluster, { progress })), 202);
  });

  // Nodes
  app.openapi(route({ method: 'get', path: `${API}/clusters/{cluster}/nodes`, summary: 'nodes with their Slurm state', request: { params: s.ClusterParam }, responses: { 200: json(z.array(s.NodeSchema), 'nodes'), ...errors } }), async (c) =>
    c.json(await listNodes(c.req.valid('param').cluster), 200),
  );
  app.openapi(route({ method: 'post', path: `${API}/clusters/{cluster}/nodes`, summary: 'add workers to a running cluster', request: { params: s.ClusterParam, ...body(s.AddNodesSchema) }, responses: accepted }), async (c) => {
    const { cluster } = c.req.valid('param');
    const req = c.req.valid('json');
    await requireState(cluster);
    return c.json(operations.start('add-nodes', cluster, (progress) => clusters.addNodes(cluster, { count: req.count, ...(req.group ? { group: req.group } : {}), progress }).then((r) => ({ nodes: r.nodes }))), 202);
  });
  app.openapi(
    route({
      method: 'delete',
      path: `${API}/clusters/{cluster}/nodes/{node}`,
      summary: 'drain a worker, wait for its jobs (or requeue them with force=true), and remove it',
      request: { params: ClusterNodeParam, query: z.object({ force: z.enum(['true', 'false']).optional().openapi({ param: { name: 'force', in: 'query' } }) }) },
      responses: accepted,
    }),
    async (c) => {
      const { cluster, node } = c.req.valid('param');
      const force = c.req.valid('query').force === 'true';
      const workers = (await requireState(cluster)).nodes.filter((n) => n.role === 'worker').map((n) => n.name);
      if (!workers.includes(node)) throw new SlurmkitError('NOT_FOUND', `cluster ${cluster} has no worker "${node}"`, { hint: `workers: ${workers.join(', ')}` });
      return c.json(operations.start('terminate-nodes', cluster, (progress) => clusters.terminateNodes(cluster, [node], { force, progress }).then((r) => ({ nodes: r.nodes, requeued: r.requeued ?? [] }))), 202);
    },
  );

  // Jobs
  app.openapi(route({ method: 'get', path: `${API}/clusters/{cluster}/jobs`, summary: 'the live queue (pending and running jobs)', request: { params: s.ClusterParam }, responses: { 200: json(z.array(s.JobSchema), 'jobs'), ...errors } }), async (c) =>
    c.json(await jobs.queue(c.req.valid('param').cluster), 200),
  );
  app.openapi(route({ method: 'post', path: `${API}/clusters/{cluster}/jobs`, summary: 'submit a batch script', request: { params: s.ClusterParam, ...body(s.SubmitSchema) }, responses: { 201: json(s.SubmittedSchema, 'submitted'), ...errors } }), async (c) =>
    c.json(await jobs.submit(c.req.valid('param').cluster, c.req.valid('json')), 201),
  );
  app.openapi(route({ method: 'get', path: `${API}/clusters/{cluster}/jobs/{job}`, summary: 'one job, live or from accounting', request: { params: ClusterJobParam }, responses: { 200: json(s.JobSchema, 'the job'), ...errors } }), async (c) => {
    const { cluster, job } = c.req.valid('param');
    return c.json(await jobs.job(cluster, job), 200);
  });
  app.openapi(route({ method: 'delete', path: `${API}/clusters/{cluster}/jobs/{job}`, summary: 'cancel a job', request: { params: ClusterJobParam }, responses: { 200: json(z.object({ cancelled: z.string() }), 'cancelled'), ...errors } }), async (c) => {
    const { cluster, job } = c.req.valid('param');
    await jobs.cancel(cluster, job);
    return c.json({ cancelled: job }, 200);
  });
  app.openapi(
    route({ method: 'get', path: `${API}/clusters/{cluster}/jobs/{job}/output`, summary: "what the job wrote to its standard output so far", request: { params: ClusterJobParam }, responses: { 200: { content: { 'text/plain': { schema: z.string() } }, description: 'output' }, ...errors } }),
    async (c) => {
      const { cluster, job } = c.req.valid('param');
      return c.text(await jobs.output(cluster, job), 200);
    },
  );
  app.openapi(
    route({
      method: 'get',
      path: `${API}/clusters/{cluster}/history`,
      summary: 'jobs from accounting (sacct), oldest first',
      request: {
        params: s.ClusterParam,
        query: z.object({
          since: z.string().optional().openapi({ param: { name: 'since', in: 'query' }, example: 'now-1hour' }),
          limit: z.coerce.number().int().min(1).max(100_000).optional().openapi({ param: { name: 'limit', in: 'query' } }),
        }),
      },
      responses: { 200: json(z.array(s.JobSchema), 'jobs'), 501: json(s.ErrorSchema, 'the cluster has no accounting'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await jobs.history(c.req.valid('param').cluster, { ...(q.since ? { since: q.since } : {}), ...(q.limit ? { limit: q.limit } : {}) }), 200);
    },
  );

  app.openapi(route({ method: 'get', path: `${API}/clusters/{cluster}/partitions`, summary: 'partitions with their node counts', request: { params: s.ClusterParam }, responses: { 200: json(z.array(s.PartitionSchema), 'partitions'), ...errors } }), async (c) =>
    c.json(await jobs.partitions(c.req.valid('param').cluster), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: `${API}/clusters/{cluster}/live`,
      summary: 'Server-Sent Events: a "snapshot" of the cluster (nodes, partitions, queue) now and whenever it changes',
      request: { params: s.ClusterParam },
      responses: { 200: { content: { 'text/event-stream': { schema: z.string() } }, description: 'events: "snapshot" with {cluster, partitions, queue, at}' }, ...errors },
    }),
    async (c) => {
      const { cluster } = c.req.valid('param');
      await requireState(cluster);
      return streamSSE(c, async (stream) => {
        const pending: unknown[] = [];
        let wake: (() => void) | undefined;
        const stop = deps.live.subscribe(cluster, (snap) => (pending.push(snap), wake?.()));
        stream.onAbort(() => (stop(), wake?.()));
        try {
          while (!stream.aborted) {
            const snap = pending.shift();
            if (snap === undefined) await new Promise<void>((r) => (wake = r));
            else await stream.writeSSE({ event: 'snapshot', data: JSON.stringify(snap) });
          }
        } finally {
          stop();
        }
      });
    },
  );
  app.openapi(route({ method: 'post', path: `${API}/clusters/{cluster}/demo`, summary: 'the demo on this cluster: 49 colour photos into input, grayscale into output over the workers, verified', request: { params: s.ClusterParam }, responses: accepted }), async (c) => {
    const { cluster } = c.req.valid('param');
    await requireState(cluster);
    return c.json(operations.start('demo', cluster, (progress) => demoOn(cluster, progress)), 202);
  });

  // Function calls shipped as jobs
  app.openapi(
    route({ method: 'post', path: `${API}/clusters/{cluster}/calls`, summary: 'run a self-contained function with its arguments on a node, as a Slurm job', request: { params: s.ClusterParam, ...body(s.CallSchema) }, responses: { 201: json(s.CallSubmittedSchema, 'submitted; its job id and call id'), ...errors } }),
    async (c) => c.json(await jobs.submitCall(c.req.valid('param').cluster, c.req.valid('json')), 201),
  );
  app.openapi(
    route({
      method: 'get',
      path: `${API}/clusters/{cluster}/calls/{call}`,
      summary: "a call's result: its value, or the remote error with its stack",
      request: { params: s.ClusterParam.extend({ call: z.uuid().openapi({ param: { name: 'call', in: 'path' } }) }) },
      responses: { 200: json(s.CallResultSchema, 'the result, once there is one'), ...errors },
    }),
    async (c) => {
      const { cluster, call } = c.req.valid('param');
      const result = await jobs.callResult(cluster, call);
      return c.json(result ? { done: true, result } : { done: false }, 200);
    },
  );

  // Blob storage
  app.openapi(route({ method: 'get', path: `${API}/clusters/{cluster}/blob/containers`, summary: 'blob containers', request: { params: s.ClusterParam }, responses: { 200: json(z.array(s.ContainerSchema), 'containers'), ...errors } }), async (c) =>
    c.json(await blob.containers(c.req.valid('param').cluster), 200),
  );
  app.openapi(
    route({
      method: 'put',
      path: `${API}/clusters/{cluster}/blob/containers/{container}`,
      summary: 'create a container (an existing one is kept)',
      request: { params: ContainerParam },
      responses: { 200: json(z.object({ container: z.string(), created: z.boolean() }), 'created, or there already'), ...errors },
    }),
    async (c) => {
      const { cluster, container } = c.req.valid('param');
      return c.json(await blob.createContainer(cluster, container), 200);
    },
  );
  app.openapi(
    route({
      method: 'get',
      path: `${API}/clusters/{cluster}/blob/containers/{container}/blobs`,
      summary: 'the blobs of a container',
      request: { params: ContainerParam, query: z.object({ prefix: z.string().optional().openapi({ param: { name: 'prefix', in: 'query' } }) }) },
      responses: { 200: json(z.array(s.BlobSchema), 'blobs'), ...errors },
    }),
    async (c) => {
      const { cluster, container } = c.req.valid('param');
      const list = await blob.blobs(cluster, container, c.req.valid('query').prefix);
      return c.json(list.map((b) => ({ ...b, contentType: b.contentType ?? undefined })), 200);
    },
  );
  app.openapi(
    route({
      method: 'put',
      path: `${API}/clusters/{cluster}/blob/containers/{container}/blob`,
      summary: 'upload a blob (the request body, as is); the container is created when missing',
      request: { params: ContainerParam, query: BlobQuery, body: { content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } }, required: true } },
      responses: { 201: json(s.BlobSchema, 'uploaded'), ...errors },
    }),
    async (c) => {
      const { cluster, container } = c.req.valid('param');
      const data = Buffer.from(await c.req.arrayBuffer());
      const type = c.req.header('content-type');
      const info = await blob.upload(cluster, container, c.req.valid('query').name, data, type && type !== 'application/octet-stream' ? type : undefined);
      return c.json({ ...info, contentType: info.contentType ?? undefined }, 201);
    },
  );
  app.openapi(
    route({
      method: 'get',
      path: `${API}/clusters/{cluster}/blob/containers/{container}/blob`,
      summary: 'download a blob',
      request: { params: ContainerParam, query: BlobQuery },
      responses: { 200: { content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } }, description: 'the blob' }, ...errors },
    }),
    async (c) => {
      const { cluster, container } = c.req.valid('param');
      const { info, data } = await blob.download(cluster, container, c.req.valid('query').name);
      return c.body(new Uint8Array(data), 200, { 'content-type': info.contentType ?? 'application/octet-stream', etag: info.etag });
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: `${API}/clusters/{cluster}/blob/containers/{container}/thumbnail`,
      summary: 'a small JPEG of an image blob, for thumbnails',
      request: { params: ContainerParam, query: BlobQuery.extend({ width: z.coerce.number().int().min(16).max(1024).optional().openapi({ param: { name: 'width', in: 'query' } }) }) },
      responses: { 200: { content: { 'image/jpeg': { schema: z.string().openapi({ format: 'binary' }) } }, description: 'the thumbnail' }, 501: json(s.ErrorSchema, 'the blob is not an image'), ...errors },
    }),
    async (c) => {
      const { cluster, container } = c.req.valid('param');
      const q = c.req.valid('query');
      const data = await blob.thumbnail(cluster, container, q.name, q.width ?? 160);
      return c.body(new Uint8Array(data), 200, { 'content-type': 'image/jpeg', 'cache-control': 'private, max-age=60' });
    },
  );

  // Batch runs
  app.openapi(route({ method: 'post', path: `${API}/clusters/{cluster}/batch`, summary: 'convert every blob of a container into another, over the workers', request: { params: s.ClusterParam, ...body(s.BatchSchema) }, responses: accepted }), async (c) => {
    const { cluster } = c.req.valid('param');
    const req = c.req.valid('json');
    await requireState(cluster);
    const mode = req.builtin ? { builtin: req.builtin } : { command: req.command! };
    return c.json(operations.start('batch', cluster, (progress) => batch(cluster, { input: req.input, output: req.output, mode, ...(req.force ? { force: true } : {}), ...(req.tasks ? { tasks: req.tasks } : {}) }, progress)), 202);
  });

  // Operations
  app.openapi(route({ method: 'get', path: `${API}/operations`, summary: 'operations of this server, running and recent', responses: { 200: json(z.array(s.OperationSchema), 'operations'), ...errors } }), (c) =>
    c.json(operations.list() as z.infer<typeof s.OperationSchema>[], 200),
  );
  app.openapi(route({ method: 'get', path: `${API}/operations/{id}`, summary: 'one operation: its events so far, then its result or error', request: { params: OperationParam }, responses: { 200: json(s.OperationSchema, 'the operation'), ...errors } }), (c) =>
    c.json(operations.get(c.req.valid('param').id) as z.infer<typeof s.OperationSchema>, 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: `${API}/operations/{id}/events`,
      summary: 'Server-Sent Events: every progress event (past ones first), then "end" with the operation',
      request: { params: OperationParam },
      responses: { 200: { content: { 'text/event-stream': { schema: z.string() } }, description: 'events: "progress" (a ProgressEvent), then "end" (an Operation)' }, ...errors },
    }),
    (c) => {
      const op = operations.get(c.req.valid('param').id);
      return streamSSE(c, async (stream) => {
        // The listener and the count of past events are taken in one tick: what comes later is in the queue.
        const queue: OperationUpdate[] = [];
        let wake: (() => void) | undefined;
        const stop = op.status === 'running' ? operations.follow(op.id, (u) => (queue.push(u), wake?.())) : () => undefined;
        const past = op.events.slice();
        stream.onAbort(() => (stop(), wake?.()));
        try {
          for (const event of past) await stream.writeSSE({ event: 'progress', data: JSON.stringify(event) });
          for (;;) {
            const u = queue.shift();
            if (u?.type === 'event') await stream.writeSSE({ event: 'progress', data: JSON.stringify(u.event) });
            else if (u?.type === 'end' || op.status !== 'running') break;
            else if (stream.aborted) return;
            else await new Promise<void>((r) => (wake = r));
          }
          await stream.writeSSE({ event: 'end', data: JSON.stringify(op) });
        } finally {
          stop();
        }
      });
    },
  );

  // The dashboard: one page, no token in it; it asks for the token and keeps it in the tab's sessionStorage.
  app.get('/', (c) => c.html(dashboardHtml));
  app.get('/metrics', async (c) => c.text(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType }));
  app.doc31('/openapi.json', { openapi: '3.1.0', info: { title: 'slurmkit', version: '0.1.0', description: 'Slurm clusters out of containers: clusters, nodes, jobs, blob storage and batch runs.' } });
  return app;
}
