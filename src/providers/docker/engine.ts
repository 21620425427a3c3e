/**
 * The Docker engine slurmkit talks to: the one DOCKER_HOST names, or the default socket, through
 * dockerode. Every call that fails because the engine is not there says so, with the fix.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { SlurmkitError } from '../../util/errors.js';

/** Labels slurmkit puts on everything it makes in an engine. */
export const LABEL = {
  cluster: 'slurmkit.cluster',
  id: 'slurmkit.id',
  home: 'slurmkit.home',
  node: 'slurmkit.node',
  image: 'slurmkit.image',
  /** On a swarm node: the host name the spec gives its engine. */
  host: 'slurmkit.host',
} as const;

/** The engine's address, for messages: DOCKER_HOST or the default socket. */
export function engineEndpoint(): string {
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

export function engine(): Docker {
  return new Docker();
}

/**
 * An engine at a DOCKER_HOST-style endpoint, reached the ways Docker's own client reaches one:
 * unix:///path, tcp://host:port (TLS with the client certificates of `tlsCertPath`, a folder
 * holding ca.pem, cert.pem and key.pem, as DOCKER_CERT_PATH does) or ssh://user@host[:port]
 * (through the ssh agent of SSH_AUTH_SOCK; the remote user must be allowed to use the engine).
 */
export function engineAt(endpoint: string, tlsCertPath?: string): Docker {
  const url = new URL(endpoint);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  if (url.protocol === 'ssh:') {
    return new Docker({
      protocol: 'ssh',
      host: url.hostname,
      port: url.port ? Number(url.port) : 22,
      ...(url.username ? { username: url.username } : {}),
      sshOptions: { agent: process.env.SSH_AUTH_SOCK },
    } as Docker.DockerOptions);
  }
  if (url.protocol === 'tcp:') {
    if (!tlsCertPath) return new Docker({ protocol: 'http', host: url.hostname, port: Number(url.port) });
    const read = (f: string) => readFileSync(join(tlsCertPath, f));
    return new Docker({ protocol: 'https', host: url.hostname, port: Number(url.port), ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
  }
  throw new SlurmkitError('USAGE', `${endpoint}: not an engine endpoint`, { hint: 'use unix:///path/docker.sock, tcp://host:port or ssh://user@host' });
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE']);

/** Whether an error means the engine could not be reached at all (as opposed to refusing a request). */
export function isUnreachable(err: unknown): boolean {
  return UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? '');
}

export function unreachableError(err: unknown, endpoint = engineEndpoint()): SlurmkitError {
  return new SlurmkitError('PRECONDITION', `no Docker engine answers at ${endpoint} (${(err as Error).message})`, {
    hint: 'start one (systemctl start docker, or dockerd) or point DOCKER_HOST at a running engine; `slurmkit doctor --provider docker` checks it',
  });
}

/** Pings the engine; rejects PRECONDITION naming the endpoint when nothing answers. */
export async function reachable(docker: Docker, endpoint?: string): Promise<{ version: string; apiVersion: string; storageDriver: string }> {
  try {
    await docker.ping();
    const [version, info] = await Promise.all([docker.version(), docker.info() as Promise<{ Driver?: string }>]);
    return { version: version.Version, apiVersion: version.ApiVersion, storageDriver: info.Driver ?? 'unknown' };
  } catch (err) {
    throw isUnreachable(err) ? unreachableError(err, endpoint) : err;
  }
}

/** The HTTP status of a failed engine request (404, 409, ...), if it was one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The engine's own message for a failed request, without dockerode's prefix. */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } }).json;
  return json?.message ?? (err as Error).message;
}

/** How long a host's engine may take to answer before it counts as down (engines of several hosts). */
export const HOST_TIMEOUT_MS = 10_000;

/** Resolves with `what`, or rejects PRECONDITION naming the host when it takes longer than `ms`. */
export async function answerWithin<T>(host: { name: string; endpoint: string }, what: Promise<T>, ms = HOST_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SlurmkitError('PRECONDITION', `host ${host.name}: its engine at ${host.endpoint} did not answer within ${ms / 1000} s`, { hint: `check that the host is up and its engine listens there (docker -H ${host.endpoint} info)` })),
      ms,
    );
  });
  try {
    return await Promise.race([what, timeout]);
  } catch (err) {
    if (isUnreachable(err)) {
      throw new SlurmkitError('PRECONDITION', `host ${host.name}: no Docker engine answers at ${host.endpoint} (${(err as Error).message})`, { hint: `start the engine on ${host.name}, or fix provider.hosts[].endpoint in the spec` });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
