/**
 * The cluster's Slurm REST API (slurmrestd on the head), reached from the host through its
 * root-only unix socket with a short-lived JWT from `scontrol token`.
 */
import { request } from 'node:http';
import { existsSync } from 'node:fs';
import { SlurmkitError } from '../util/errors.js';
import { ClusterPaths } from './paths.js';
import { headOf, labelOf, providerFor } from './nodes.js';
import { requireState } from './state.js';
import { restSocket } from './site.js';

export const REST_API = '/slurm/v0.0.38';

export interface RestResponse {
  status: number;
  body: unknown;
}

/** A token for `user`, valid for `lifespanSeconds`; issued by slurmctld in the head (root only). */
export async function restToken(cluster: string, user = 'root', lifespanSeconds = 300): Promise<string> {
  const state = await requireState(cluster);
  const r = await providerFor(state).exec({
    label: labelOf(state),
    node: headOf(state).name,
    command: ['scontrol', 'token', `username=${user}`, `lifespan=${lifespanSeconds}`],
    stdio: 'capture',
  });
  const token = /SLURM_JWT=(\S+)/.exec(r.stdout)?.[1];
  if (r.exitCode !== 0 || !token) {
    throw new SlurmkitError('COMMAND_FAILED', `scontrol token for ${user} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return token;
}

/** One REST call, e.g. restRequest('lab', 'GET', '/nodes'). Paths are relative to the v0.0.38 API unless absolute under /slurm or /slurmdb. */
export async function restRequest(cluster: string, method: string, path: string, opts: { user?: string; body?: unknown } = {}): Promise<RestResponse> {
  const state = await requireState(cluster);
  if (!state.site?.rest) {
    throw new SlurmkitError('CONFLICT', `cluster ${cluster} has no REST API`, { hint: 'set `rest: true` in the spec and create the cluster again' });
  }
  const socketPath = restSocket(ClusterPaths.of(cluster));
  if (!existsSync(socketPath)) {
    throw new SlurmkitError('CONFLICT', `slurmrestd of cluster ${cluster} is not running`, { hint: `slurmkit start ${cluster}` });
  }
  const user = opts.user ?? 'root';
  const token = await restToken(cluster, user);
  const fullPath = /^\/slurm(db)?\//.test(path) ? path : `${REST_API}${path.startsWith('/') ? '' : '/'}${path}`;
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path: fullPath,
        method,
        headers: {
          'X-SLURM-USER-NAME': user,
          'X-SLURM-USER-TOKEN': token,
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', (err) => reject(new SlurmkitError('COMMAND_FAILED', `REST request to ${fullPath} failed: ${err.message}`)));
    req.end(payload);
  });
}
