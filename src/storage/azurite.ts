import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { headOf, labelOf, providerFor } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';
import { SlurmkitError } from '../util/errors.js';
import { shellQuote as q, waitFor } from '../util/run.js';
import { redact } from './connection-string.js';
import type { BlobPaths } from './paths.js';
import type { Account } from './secrets.js';
import type { ProbeResult } from './store.js';
import type { HeadNeeds } from '../cluster/services.js';

export const AZURITE_PORT = 10000;

/** Azurite's blob server script, from this package's own dependencies. */
export function azuriteEntry(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('azurite/package.json');
  } catch {
    throw new SlurmkitError('PRECONDITION', 'the azurite package is not installed', { hint: 'run `npm ci` in the slurmkit folder' });
  }
  const entry = join(dirname(pkg), 'dist', 'src', 'blob', 'main.js');
  if (!existsSync(entry)) throw new SlurmkitError('PRECONDITION', `${entry} is missing`, { hint: 'run `npm ci` in the slurmkit folder' });
  return entry;
}

/** Where Azurite keeps its data and log inside a head that does not see the cluster folder (volumes of the cluster). */
const IN_VOLUMES = { data: '/var/lib/azurite', log: '/var/log/slurm/azurite.log' };

/** Azurite's data folder and log as the head sees them: in the cluster folder, or in volumes. */
export function azuriteLocations(state: ClusterState, paths: BlobPaths): { data: string; log: string } {
  return providerFor(state).capabilities.sharesHost ? { data: paths.data, log: paths.log } : IN_VOLUMES;
}

/** What Azurite needs in a head that does not see the cluster folder: a volume for its data (its account comes at its start). */
export const AZURITE_HEAD_NEEDS: HeadNeeds = { mounts: [{ type: 'volume', name: 'blob', target: IN_VOLUMES.data }], ports: [AZURITE_PORT] };

async function logTail(state: ClusterState, log: string, account: Account, lines = 15): Promise<string> {
  const r = await providerFor(state)
    .exec({ label: labelOf(state), node: headOf(state).name, command: ['tail', '-n', String(lines), log], stdio: 'capture' })
    .catch(() => undefined);
  return redact((r?.exitCode === 0 ? r.stdout : '').trimEnd(), [account.key]);
}

/**
 * The shell that starts Azurite in the head. The key reaches Azurite only through its
 * environment, read from the 0600 file: it is on no command line and in no log. Azurite
 * listens on 0.0.0.0 of the head's own network namespace: the cluster subnet and the head's
 * loopback, nothing of the host's. Prints Azurite's pid (in the head's PID namespace).
 */
export function azuriteScript(paths: BlobPaths, where: { data: string; log: string }, nodeBinary = process.execPath, entry = azuriteEntry()): string {
  const args = [
    entry,
    '--blobHost', '0.0.0.0',
    '--blobPort', String(AZURITE_PORT),
    '--location', where.data,
    '--skipApiVersionCheck',
    '--loose',
    '--silent',
    '--disableTelemetry',
  ];
  return [
    'set -e',
    // Blob data and Azurite's databases are for root only, like the rest of the cluster folder.
    'umask 077',
    `mkdir -p ${q(where.data)}`,
    `echo "$(date -Is) slurmkit: starting azurite" >> ${q(where.log)}`,
    `AZURITE_ACCOUNTS="$(cat ${q(paths.accountInHead)})" setsid ${q(nodeBinary)} ${args.map(q).join(' ')} >> ${q(where.log)} 2>&1 < /dev/null &`,
    'echo $!',
  ].join('\n');
}

/**
 * Starts Azurite inside the head node, unless one is already there (answering or still
 * starting: `up` launches it without waiting), and, with `wait`, waits until `probe` sees it
 * answer with the cluster's credentials. On failure it stops it and reports the log's tail.
 */
export async function startAzurite(
  state: ClusterState,
  paths: BlobPaths,
  account: Account,
  probe: () => Promise<ProbeResult>,
  timeoutMs: number,
  wait = true,
): Promise<void> {
  const provider = providerFor(state);
  const label = labelOf(state);
  const head = headOf(state).name;
  const inHead = (script: string) => provider.exec({
    label,
    node: head,
    // exec labels what it starts like the node's daemons, so `down` and `gc` find Azurite by label too.
    command: ['bash', '-c', script],
    stdio: 'capture',
  });
  // The head has its own PID namespace: pgrep there sees the head's processes only. The
  // brackets keep pgrep from matching the shell that runs it.
  const entry = azuriteEntry();
  const where = azuriteLocations(state, paths);
  const seeLog = `slurmkit logs ${state.name} --daemon azurite`;
  const found = await inHead(`pgrep -o -f -- ${q(`[${entry[0]}]${entry.slice(1)}`)} || true`);
  let pid = Number(found.stdout.trim());
  if (!(Number.isInteger(pid) && pid > 0)) {
    if (!providerFor(state).capabilities.sharesHost) {
      // A head that does not see the cluster folder gets the account as a root-only file, through stdin.
      const dir = dirname(paths.accountInHead);
      const placed = await provider.exec({
        label,
        node: head,
        command: ['bash', '-c', `umask 077 && mkdir -p ${q(dir)} && cat > ${q(paths.accountInHead)}`],
        input: `${account.name}:${account.key}`,
        stdio: 'capture',
      });
      if (placed.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `could not place the blob account on ${head}: ${placed.stderr.trim()}`);
    }
    const started = await inHead(azuriteScript(paths, where, process.execPath, entry));
    pid = Number(started.stdout.trim());
    if (started.exitCode !== 0 || !Number.isInteger(pid) || pid <= 0) {
      throw new SlurmkitError('COMMAND_FAILED', `could not start Azurite on ${head} (exit ${started.exitCode}): ${redact(started.stderr.trim(), [account.key])}`, {
        hint: `see: ${seeLog}`,
      });
    }
  }
  if (!wait) return;
  const alive = async () => (await inHead(`kill -0 ${pid} 2>/dev/null`)).exitCode === 0;
  let last: ProbeResult = 'unreachable';
  try {
    await waitFor(
      `Azurite on ${head}:${AZURITE_PORT} to answer`,
      async () => {
        last = await probe();
        if (last === 'ok') return true;
        if (last === 'rejected' || last === 'foreign') {
          throw new SlurmkitError('PRECONDITION', `something on ${head}:${AZURITE_PORT} answers but does not take the cluster's account`, {
            hint: `restart the cluster's services: slurmkit stop ${state.name} && slurmkit start ${state.name}`,
          });
        }
        if (!(await alive())) {
          // Another slurmkit may have started it a moment earlier: then ours lost the port, and theirs will answer.
          const tail = await logTail(state, where.log, account, 5);
          if (/EADDRINUSE/.test(tail)) return undefined;
          throw new SlurmkitError('COMMAND_FAILED', `Azurite on ${head} exited while starting`);
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 50, describe: () => last },
    );
  } catch (err) {
    await inHead(`kill ${pid} 2>/dev/null; for _ in $(seq 50); do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${pid} 2>/dev/null || true`).catch(() => undefined);
    const tail = await logTail(state, where.log, account);
    if (err instanceof SlurmkitError) {
      throw new SlurmkitError(err.code, err.message, {
        hint: err.hint ?? `see: ${seeLog}`,
        details: [...err.details, ...(tail ? [`last lines of ${where.log} on ${head}:\n${tail}`] : [])],
      });
    }
    throw err;
  }
}
