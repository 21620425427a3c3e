/** `slurmkit serve` and `slurmkit token`: thin; the server is src/server. */
import type { Command } from 'commander';
import { Progress } from '../util/progress.js';
import { SlurmkitError } from '../util/errors.js';

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new SlurmkitError('USAGE', `--port ${value}: a port is a whole number from 0 to 65535 (0 picks a free one)`);
  return n;
}

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('serve the REST API (OpenAPI at /openapi.json) and metrics on this machine, loopback by default')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0 picks a free one)', port, 8642)
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this private key (PEM)')
    .option('--insecure-http', 'allow plain HTTP on a non-loopback --host (the token then crosses the network in clear text)')
    .option('--json', 'print where it listens as one JSON line')
    .action(async (opts: { host: string; port: number; tlsCert?: string; tlsKey?: string; insecureHttp?: boolean; json?: boolean }) => {
      const { startServer } = await import('../server/serve.js');
      const server = await startServer({ host: opts.host, port: opts.port, ...(opts.tlsCert ? { tlsCert: opts.tlsCert } : {}), ...(opts.tlsKey ? { tlsKey: opts.tlsKey } : {}), ...(opts.insecureHttp ? { insecureHttp: true } : {}) });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ url: server.url, openapi: `${server.url}/openapi.json`, tokenFile: server.tokenFile, tokenCreated: server.newToken !== undefined })}\n`);
      } else {
        process.stdout.write(`slurmkit serve: ${server.url}  (API ${server.url}/api/v1, OpenAPI ${server.url}/openapi.json, metrics ${server.url}/metrics)\n`);
        if (server.newToken) {
          process.stdout.write(`A token was made for this machine's slurmkit; it is shown this once (it is also in ${server.tokenFile}, readable by you only):\n  ${server.newToken}\nSend it as: Authorization: Bearer <token>\n`);
        } else {
          process.stdout.write(`Token: in ${server.tokenFile} (new one: slurmkit token --rotate)\n`);
        }
      }
      // Ctrl-C or SIGTERM: running operations stop at their next phase and clean up, then the server exits.
      const signal = Progress.stderr().signal;
      await new Promise<void>((resolve) => (signal?.aborted ? resolve() : signal?.addEventListener('abort', () => resolve(), { once: true })));
      process.stderr.write('slurmkit serve: stopping (running operations clean up first)\n');
      await server.close();
    });

  program
    .command('token')
    .description("the API token of `slurmkit serve`: where it is kept, or a new one with --rotate")
    .option('--rotate', 'make a new token; the old one stops working at once, also in a running server')
    .option('--json', 'print as JSON')
    .action(async (opts: { rotate?: boolean; json?: boolean }) => {
      const { rotateToken, tokenPath } = await import('../server/auth.js');
      if (opts.rotate) {
        const token = await rotateToken();
        if (opts.json) process.stdout.write(`${JSON.stringify({ token, tokenFile: tokenPath() })}\n`);
        else process.stdout.write(`New token (shown this once; also in ${tokenPath()}):\n  ${token}\nThe old token no longer works.\n`);
      } else if (opts.json) {
        process.stdout.write(`${JSON.stringify({ tokenFile: tokenPath() })}\n`);
      } else {
        process.stdout.write(`The token is in ${tokenPath()} (readable by you only; made by the first slurmkit serve). A new one: slurmkit token --rotate\n`);
      }
    });
}
