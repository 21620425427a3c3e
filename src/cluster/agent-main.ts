/**
 * The process of a cluster's autoscaling agent: `node agent-main.js NAME`, started by `up` and
 * `start`, stopped by `stop` and `down` (SIGTERM), and ending by itself once the cluster is
 * stopped or gone. Logs one line per action to stdout (agent.log in the cluster folder).
 */
import { runAgent } from './autoscale.js';

const name = process.argv[2];
if (!name) {
  process.stderr.write('usage: agent-main.js CLUSTER\n');
  process.exit(2);
}
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
log(`agent of cluster ${name} started (pid ${process.pid})`);
runAgent(name, { signal: stop.signal, log })
  .then(() => {
    log('agent stopped');
    process.exit(0);
  })
  .catch((err: unknown) => {
    log(`agent failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  });
