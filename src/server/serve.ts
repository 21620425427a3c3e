/**
 * `slurmkit serve`: the API (and later the dashboard) on one HTTP server, loopback by default.
 * A host other than loopback needs TLS, or an explicit --insecure-http for a network you trust:
 * the token would otherwise cross it in clear text.
 */
import { createServer as createHttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import { serve as nodeServe } from '@hono/node-server';
import { Operations } from '../app/operations.js';
import { keepHeadChannels } from '../app/clusters.js';
import { SlurmkitError } from '../util/errors.js';
import { createApp } from './app.js';
import { TokenCheck, ensureToken, tokenPath } from './auth.js';
import { Metrics } from './metrics.js';
import { Live } from './live.js';

export const DEFAULT_PORT = 8642;

export interface ServeOptions {
  host?: string;
  port?: number;
  tlsCert?: string;
  tlsKey?: string;
  /** Serve plain HTTP on a non-loopback host. */
  insecureHttp?: boolean;
}

export interface RunningServer {
  url: string;
  tokenFile: string;
  /** The token, when this start made it (show it once). */
  newToken: string | undefined;
  operations: Operations;
  /** Stops taking requests, interrupts running operations and waits for them to clean up. */
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function checkListen(opts: ServeOptions): void {
  const host = opts.host ?? '127.0.0.1';
  if (isIP(host) === 0 && host !== 'localhost') {
    throw new SlurmkitError('USAGE', `--host ${host}: give an IP address (127.0.0.1, ::1, 0.0.0.0) or localhost`);
  }
  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)) {
    throw new SlurmkitError('USAGE', `--port ${opts.port}: a port is a whole number from 0 to 65535 (0 picks a free one)`);
  }
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
    throw new SlurmkitError('USAGE', 'give both --tls-cert and --tls-key, or neither');
  }
  if (!isLoopback(host) && !opts.tlsCert && !opts.insecureHttp) {
    throw new SlurmkitError('USAGE', `--host ${host} is reachable from other machines, and without TLS the API token would cross the network in clear text`, {
      hint: 'give --tls-cert FILE --tls-key FILE, or --insecure-http if the network is yours alone; or keep the default 127.0.0.1 and reach it through an SSH tunnel',
    });
  }
}

/** A PEM file given on the command line; one that cannot be read or is no PEM is a USAGE error naming the flag. */
async function readPem(flag: string, file: string): Promise<Buffer> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw new SlurmkitError('USAGE', `${flag} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      hint: 'give the path of a PEM file this user can read',
    });
  }
  if (!pem.toString('utf8').includes('-----BEGIN ')) {
    throw new SlurmkitError('USAGE', `${flag} ${file}: not a PEM file (no -----BEGIN line)`, { hint: 'give the certificate and its private key in PEM, as openssl writes them' });
  }
  return pem;
}

export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  checkListen(opts);
  const host = opts.host ?? '127.0.0.1';
  const tls = opts.tlsCert && opts.tlsKey ? { cert: await readPem('--tls-cert', opts.tlsCert), key: await readPem('--tls-key', opts.tlsKey) } : undefined;
  const { token, created } = await ensureToken();
  const metrics = new Metrics();
  const operations = new Operations((op) => metrics.operationEnded(op));
  const live = new Live();
  const app = createApp({ operations, live, tokens: new TokenCheck(), metrics });
  const server = await new Promise<ReturnType<typeof nodeServe>>((resolve, reject) => {
    const s = nodeServe(
      {
        fetch: app.fetch,
        hostname: host,
        port: opts.port ?? DEFAULT_PORT,
        overrideGlobalObjects: false,
        ...(tls ? { createServer: createHttpsServer, serverOptions: tls } : {}),
      },
      () => resolve(s),
    );
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new SlurmkitError('CONFLICT', `port ${opts.port ?? DEFAULT_PORT} on ${host} is in use`, { hint: 'give another --port (0 picks a free one)' })
          : err,
      ),
    );
  });
  const releaseChannels = keepHeadChannels();
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `${tls ? 'https' : 'http'}://${shown}:${port}`,
    tokenFile: tokenPath(),
    newToken: created ? token : undefined,
    operations,
    async close() {
      operations.interrupt();
      await operations.settled();
      live.close();
      releaseChannels();
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Event streams and kept-alive connections would hold close() open.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
    },
  };
}
