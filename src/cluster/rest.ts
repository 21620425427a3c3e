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
  const notRunning = () => new SlurmkitError('CONFLICT', `slurmrestd of cluster ${cluster} is not running`, { hint: `slurmkit start ${cluster}` });
  const sharesHost = providerFor(state).capabilities.sharesHost;
  const socketPath = sharesHost ? restSocket(ClusterPaths.of(cluster)) : IN_HEAD_SOCKET;
  if (sharesHost && !existsSync(socketPath)) throw notRunning();
  const user = opts.user ?? 'root';
  const token = await restToken(cluster, user);
  const fullPath = /^\/slurm(db)?\//.test(path) ? path : `${REST_API}${path.startsWith('/') ? '' : '/'}${path}`;
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const call: RestCall = {
    socketPath,
    path: fullPath,
    method,
    headers: {
      'X-SLURM-USER-NAME': user,
      'X-SLURM-USER-TOKEN': token,
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
    },
    ...(payload ? { body: payload.toString('utf8') } : {}),
  };
  if (sharesHost) return callSocket(call);
  // The socket is the head's own: the call is made there, by this program's runtime, and the
  // token goes in on stdin (never on a command line).
  const r = await providerFor(state).exec({
    label: labelOf(state),
    node: headOf(state).name,
    command: [process.execPath, '--input-type=module', '-e', IN_HEAD_CLIENT],
    input: JSON.stringify(call),
    stdio: 'capture',
  });
  if (r.exitCode === 3) throw notRunning();
  if (r.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `REST request to ${fullPath} failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  const { status, text } = JSON.parse(r.stdout) as { status: number; text: string };
  return { status, body: parseBody(text) };
}

/** Where slurmrestd listens inside the head. */
const IN_HEAD_SOCKET = '/run/slurmrestd/slurmrestd.sock';

interface RestCall {
  socketPath: string;
  path: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** The same request as callSocket, run inside the head: a RestCall on stdin, {status, text} on stdout; exit 3 without the socket. */
const IN_HEAD_CLIENT = `
import { request } from 'node:http';
import { existsSync } from 'node:fs';
let input = '';
for await (const c of process.stdin) input += c;
const call = JSON.parse(input);
if (!existsSync(call.socketPath)) process.exit(3);
const req = request({ socketPath: call.socketPath, path: call.path, method: call.method, headers: call.headers }, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })));
});
req.on('error', (err) => { console.error(err.message); process.exit(1); });
req.end(call.body);
`;

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text; // not JSON: keep the text
  }
}

function callSocket(call: RestCall): Promise<RestResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: call.socketPath, path: call.path, method: call.method, headers: call.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: parseBody(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', (err) => reject(new SlurmkitError('COMMAND_FAILED', `REST request to ${call.path} failed: ${err.message}`)));
    req.end(call.body);
  });
}
