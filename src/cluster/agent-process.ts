/**
 * The process of a cluster's autoscaling agent (see autoscale.ts): started detached by `up` and
 * `start` when the cluster has nodes to autoscale, stopped by `stop` and `down`. Its pid and log
 * are files of the cluster folder, removed with it.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../util/run.js';
import { ClusterPaths } from './paths.js';
import type { ClusterState } from './state.js';

const agentPid = (name: string) => join(ClusterPaths.of(name).root, 'agent.pid');
export const agentLog = (name: string) => join(ClusterPaths.of(name).root, 'agent.log');

/** Whether this pid is this cluster's agent (a pid file may outlive its process, and pids are reused). */
function isAgent(pid: number, name: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('agent-main.js')) && argv.includes(name);
  } catch {
    return false;
  }
}

/** The pid of the cluster's agent, when it runs. */
export function runningAgent(name: string): number | undefined {
  const file = agentPid(name);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && isAgent(pid, name) ? pid : undefined;
}

/** Starts the cluster's agent (a detached process logging to agent.log in the cluster folder), unless it runs or nothing autoscales. */
export async function startAgent(state: ClusterState): Promise<void> {
  if (!state.cloud?.length || runningAgent(state.name) !== undefined) return;
  const main = fileURLToPath(new URL('./agent-main.js', import.meta.url));
  const out = openSync(agentLog(state.name), 'a', 0o600);
  try {
    const child = spawn(process.execPath, [main, state.name], { detached: true, stdio: ['ignore', out, out], env: process.env });
    await writeFile(agentPid(state.name), `${child.pid}\n`, { mode: 0o600 });
    child.unref();
  } finally {
    closeSync(out);
  }
}

/** Stops the cluster's agent and waits for it (it finishes the nodes it was making or removing). */
export async function stopAgent(name: string, timeoutMs = 30_000): Promise<void> {
  const pid = runningAgent(name);
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && isAgent(pid, name)) await sleep(50);
    if (isAgent(pid, name)) process.kill(pid, 'SIGKILL');
  }
  await rm(agentPid(name), { force: true });
}
