/**
 * The Docker engine slurmkit talks to: the one DOCKER_HOST names, or the default socket, through
 * dockerode. Every call that fails because the engine is not there says so, with the fix.
 */
import Docker from 'dockerode';
import { SlurmkitError } from '../../util/errors.js';

/** Labels slurmkit puts on everything it makes in an engine. */
export const LABEL = {
  cluster: 'slurmkit.cluster',
  id: 'slurmkit.id',
  home: 'slurmkit.home',
  node: 'slurmkit.node',
  image: 'slurmkit.image',
} as const;

/** The engine's address, for messages: DOCKER_HOST or the default socket. */
export function engineEndpoint(): string {
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

export function engine(): Docker {
  return new Docker();
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE']);

/** Whether an error means the engine could not be reached at all (as opposed to refusing a request). */
export function isUnreachable(err: unknown): boolean {
  return UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? '');
}

export function unreachableError(err: unknown): SlurmkitError {
  return new SlurmkitError('PRECONDITION', `no Docker engine answers at ${engineEndpoint()} (${(err as Error).message})`, {
    hint: 'start one (systemctl start docker, or dockerd) or point DOCKER_HOST at a running engine; `slurmkit doctor --provider docker` checks it',
  });
}

/** Pings the engine; rejects PRECONDITION naming the endpoint when nothing answers. */
export async function reachable(docker: Docker): Promise<{ version: string; apiVersion: string; storageDriver: string }> {
  try {
    await docker.ping();
    const [version, info] = await Promise.all([docker.version(), docker.info() as Promise<{ Driver?: string }>]);
    return { version: version.Version, apiVersion: version.ApiVersion, storageDriver: info.Driver ?? 'unknown' };
  } catch (err) {
    throw isUnreachable(err) ? unreachableError(err) : err;
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
