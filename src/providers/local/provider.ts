import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { openSync, closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { readdir, readFile, readlink, rmdir, writeFile, mkdir, rm } from 'node:fs/promises';
import type {
  Check,
  Mount,
  PreflightRequest,
  ClusterLabel,
  CreateNodesRequest,
  ExecRequest,
  ExecResult,
  LabelSelector,
  LeftoverReport,
  NetworkRequest,
  NodeProvider,
  NodeProcess,
  NodeStatus,
  OpenRequest,
} from '../types.js';
import { SlurmkitError } from '../../util/errors.js';
import { commandLine, run, sleep, waitFor } from '../../util/run.js';
import { ENV_CLUSTER, ENV_CLUSTER_ID, ENV_HOME, ENV_NODE, isAlive, labeledProcess, scanLabeledProcesses, type LabeledProcess } from './procscan.js';
import { checkMounts, filesDir, fstabFile, initFile, macOf, renderFstab, renderInitScript, statusFile } from './init-script.js';
import { localPreflight } from './preflight.js';
import {
  bridgeName,
  createNetwork,
  deleteRuleArgs,
  hostRoutes,
  listLabeledBridges,
  listLabeledRules,
  listNodeLinks,
  vethName,
} from './network.js';

const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Namespaces a node has of its own; exec enters exactly these. */
const NAMESPACES = ['--net', '--uts', '--mount', '--pid', '--ipc'];

async function tailOf(path: string, lines = 12): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Volumes as binds of folders under `${workDir}/volumes`, made on first use. */
async function volumesAsBinds(mounts: Mount[], workDir: string): Promise<Mount[]> {
  return Promise.all(
    mounts.map(async (m): Promise<Mount> => {
      if (m.type !== 'volume') return m;
      const source = `${workDir}/volumes/${m.name}`;
      await mkdir(source, { recursive: true, mode: 0o755 });
      return { type: 'bind', source, target: m.target };
    }),
  );
}

/**
 * Nodes as Linux namespaces on this machine: each node is an `unshare`d init with its own
 * network, UTS, mount, IPC and PID namespaces, plugged into a per-cluster bridge by a veth
 * pair. The rest of the filesystem is shared with the host.
 */
/**
 * Node inits found before, by cluster id and node, for every provider object of this process:
 * each is checked again on use, one process at a time (a scan of /proc costs ~25 ms; a check,
 * well under 1).
 */
const NODE_INITS = new Map<string, number>();

export class LocalProvider implements NodeProvider {
  readonly kind = 'local';
  readonly capabilities = { scale: true, needsRoot: true, sharesHost: true, sharedVolumes: true, reachesNodes: true };

  preflight(req: PreflightRequest): Promise<Check[]> {
    return localPreflight(req, req.thorough ?? false);
  }

  async takenSubnets(): Promise<string[]> {
    return (await hostRoutes()).map((r) => r.dst);
  }

  async ensureNetwork(req: NetworkRequest): Promise<void> {
    await createNetwork(req);
  }

  async createNodes(request: CreateNodesRequest): Promise<void> {
    const { label, network } = request;
    await mkdir(request.workDir, { recursive: true, mode: 0o700 });
    // A volume is a folder of the cluster's work dir here, bound like any other.
    const nodes = await Promise.all(request.nodes.map(async (node) => ({ ...node, mounts: await volumesAsBinds(node.mounts, request.workDir) })));
    const req = { ...request, nodes };
    for (const node of nodes) checkMounts(node.hostname, node.mounts);
    await Promise.all(
      req.nodes.map(async (node) => {
        // A status left by an earlier boot of this node must not be taken for this one.
        await rm(statusFile(req.workDir, node.hostname), { force: true });
        await writeFile(fstabFile(req.workDir, node.hostname), renderFstab(node.mounts), { mode: 0o600 });
        const staged = filesDir(req.workDir, node.hostname);
        await rm(staged, { recursive: true, force: true });
        if (node.files?.length) {
          await mkdir(staged, { mode: 0o700 });
          await Promise.all(node.files.map((f, i) => writeFile(`${staged}/${i}`, f.content, { mode: 0o600 })));
        }
        await writeFile(initFile(req.workDir, node.hostname), renderInitScript(node, network.prefixLength, req.workDir), {
          mode: 0o700,
        });
      }),
    );
    const hostNetns = await readlink('/proc/self/ns/net');
    const started: { hostname: string; pid: number; exited: Promise<number | null>; stdin: NodeJS.WritableStream }[] =
      [];
    try {
      for (const node of req.nodes) {
        const out = openSync(node.consoleLog, 'a', 0o600);
        const child = spawn(
          'unshare',
          [...NAMESPACES, '--fork', '--kill-child', '--mount-proc', '--propagation', 'private', 'bash', initFile(req.workDir, node.hostname)],
          {
            detached: true,
            stdio: ['pipe', out, out],
            env: {
              PATH: NODE_PATH,
              HOME: '/root',
              LANG: 'C.UTF-8',
              [ENV_CLUSTER]: label.name,
              [ENV_CLUSTER_ID]: label.id,
              [ENV_HOME]: label.home,
              [ENV_NODE]: node.hostname,
            },
          },
        );
        closeSync(out);
        const exited = new Promise<number | null>((resolve) => {
          child.on('exit', (code) => resolve(code ?? 128));
          child.on('error', () => resolve(127));
        });
        if (child.pid === undefined) throw new SlurmkitError('COMMAND_FAILED', `could not start unshare for node ${node.hostname}`);
        started.push({ hostname: node.hostname, pid: child.pid, exited, stdin: child.stdin! });
        child.unref();
      }
      // unshare enters its new network namespace itself, so its own /proc entry tells when the
      // namespace exists and the node's end of the veth pair can be moved in.
      await waitFor(
        'node network namespaces',
        async () => {
          for (const s of started) {
            if (!isAlive(s.pid)) throw new SlurmkitError('COMMAND_FAILED', `node ${s.hostname} exited while starting:\n${await tailOf(req.nodes.find((n) => n.hostname === s.hostname)!.consoleLog)}`);
            if ((await readlink(`/proc/${s.pid}/ns/net`).catch(() => hostNetns)) === hostNetns) return undefined;
          }
          return true;
        },
        { timeoutMs: 10_000, intervalMs: 5 },
      );
      const br = bridgeName(label.id);
      const byName = new Map(req.nodes.map((n) => [n.hostname, n]));
      // A node destroyed a moment ago may still hold its veth name: the kernel frees it lazily.
      const wanted = new Set(req.nodes.map((n) => vethName(label.id, n.index)));
      for (const stale of (await listNodeLinks()).filter((l) => wanted.has(l.name))) {
        await run('ip', ['link', 'del', stale.name], { allowFailure: true });
      }
      await run('ip', ['-batch', '-'], {
        input: started
          .flatMap((s) => {
            const node = byName.get(s.hostname)!;
            const veth = vethName(label.id, node.index);
            return [`link add ${veth} type veth peer name eth0 address ${macOf(node.address)} netns ${s.pid}`, `link set ${veth} master ${br} up`];
          })
          .join('\n'),
      });
      for (const s of started) {
        s.stdin.end('go\n');
      }
      await this.waitBooted(req, started);
    } catch (err) {
      await this.destroyNodes(label, req.nodes.map((n) => n.hostname), { graceMs: 0 }).catch(() => undefined);
      throw err;
    }
  }

  private async waitBooted(
    req: CreateNodesRequest,
    started: { hostname: string; exited: Promise<number | null>; pid: number }[],
  ): Promise<void> {
    const pending = new Set(started.map((s) => s.hostname));
    await waitFor(
      `${pending.size} node(s) to boot`,
      async () => {
        for (const hostname of [...pending]) {
          const status = await readFile(statusFile(req.workDir, hostname), 'utf8').catch(() => '');
          const node = req.nodes.find((n) => n.hostname === hostname)!;
          if (status.startsWith('ok')) pending.delete(hostname);
          else if (status.startsWith('failed') || !isAlive(started.find((s) => s.hostname === hostname)!.pid)) {
            throw new SlurmkitError('COMMAND_FAILED', `node ${hostname} failed to boot:\n${await tailOf(node.consoleLog)}`);
          }
        }
        return pending.size === 0 ? true : undefined;
      },
      { timeoutMs: req.timeoutMs, intervalMs: 10, maxIntervalMs: 50, describe: () => `waiting for ${[...pending].join(', ')}` },
    );
  }

  async destroyNodes(label: ClusterLabel, hostnames: string[], opts: { graceMs?: number } = {}): Promise<void> {
    const wanted = new Set(hostnames);
    const mine = (await scanLabeledProcesses()).filter((p) => p.clusterId === label.id && wanted.has(p.node));
    await this.killProcesses(mine, opts.graceMs ?? 5_000);
  }

  /** TERM the node inits (which pass it on inside the node), wait, then KILL whatever is left. */
  private async killProcesses(procs: LabeledProcess[], graceMs: number): Promise<void> {
    const inits = procs.filter((p) => p.isNodeInit);
    if (graceMs > 0) {
      for (const p of inits) signal(p.pid, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && inits.some((p) => isAlive(p.pid))) await sleep(20);
    }
    for (const p of inits) signal(p.pid, 'SIGKILL');
    for (const p of procs) signal(p.pid, 'SIGKILL');
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && procs.some((p) => isAlive(p.pid))) await sleep(10);
  }

  /** The nsenter command line and environment that run a command inside a running node. */
  private async enter(req: Pick<ExecRequest, 'label' | 'node' | 'command' | 'env' | 'cwd' | 'user'>, prefix: string[] = []): Promise<{ args: string[]; env: Record<string, string> }> {
    const init = await this.nodeInit(req.label.id, req.node);
    if (!init) {
      throw new SlurmkitError('NOT_FOUND', `node ${req.node} of cluster ${req.label.name} is not running`, {
        hint: `start it with: slurmkit start ${req.label.name}`,
      });
    }
    const env = {
      PATH: NODE_PATH,
      HOME: '/root',
      LANG: 'C.UTF-8',
      TERM: process.env.TERM ?? 'xterm',
      // Without SHLVL, bash with a socket on stdin takes itself for an rsh shell and runs ~/.bashrc.
      SHLVL: '1',
      ...req.env,
      // What exec starts carries the node's label, so list, destroyNodes and removeByLabel see it.
      [ENV_CLUSTER]: req.label.name,
      [ENV_CLUSTER_ID]: req.label.id,
      [ENV_HOME]: req.label.home,
      [ENV_NODE]: req.node,
    };
    const asUser = !req.user || req.user === 'root' || req.user === '0'
      ? []
      : /^\d+$/.test(req.user)
        ? ['setpriv', `--reuid=${req.user}`, `--regid=${req.user}`, '--clear-groups', '--']
        : ['runuser', '-u', req.user, '--'];
    const args = [
      '-t',
      String(init.pid),
      ...NAMESPACES,
      '--',
      // nsenter passes its own environment on: exactly `env`, nothing of this process's.
      // The folder is entered inside the node (nsenter's --wd opens it on the host side); one the
      // node hides or replaces (its /tmp, /home, ...) falls back to /.
      'sh',
      '-c',
      'cd -- "$0" 2>/dev/null || cd /; exec "$@"',
      req.cwd ?? '/',
      ...prefix,
      ...asUser,
      ...req.command,
    ];
    return { args, env };
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const { args, env } = await this.enter(req);
    if (req.stdio === 'capture') {
      const opts = req.input === undefined ? { allowFailure: true, env } : { allowFailure: true, env, input: req.input };
      const r = await run('nsenter', args, opts);
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    }
    return new Promise((resolve, reject) => {
      const child = spawn('nsenter', args, { stdio: 'inherit', env });
      child.on('error', (err) => reject(new SlurmkitError('COMMAND_FAILED', `could not run ${commandLine('nsenter', args)}: ${err.message}`)));
      child.on('exit', (code, sig) => resolve({ exitCode: code ?? (sig ? 128 + (osConstants.signals[sig] ?? 15) : 1), stdout: '', stderr: '' }));
    });
  }

  async open(req: OpenRequest): Promise<NodeProcess> {
    // nsenter forks into the node's PID namespace: its child, the command, is made to die with it,
    // and is in the process group of its own that close() kills (it may not have set its death
    // signal yet when close() comes).
    const { args, env } = await this.enter(req, ['setpriv', '--pdeathsig', 'KILL', '--']);
    const child = spawn('nsenter', args, { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
    let tail = '';
    child.stderr.on('data', (c: Buffer) => {
      tail = (tail + c.toString()).slice(-4096);
    });
    // A closed pipe shows as the process's exit; its write errors are not this process's to crash on.
    child.stdin.on('error', () => undefined);
    const exited = new Promise<number>((resolve) => {
      child.once('error', (err) => {
        tail += `could not run nsenter: ${err.message}`;
        resolve(127);
      });
      child.once('close', (code, sig) => resolve(code ?? (sig ? 128 + (osConstants.signals[sig] ?? 15) : 1)));
    });
    const streams = [child.stdin, child.stdout, child.stderr] as unknown as Socket[];
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      exited,
      stderrTail: () => tail,
      close: () => {
        child.stdin.end();
        if (child.pid !== undefined) signal(-child.pid, 'SIGKILL');
      },
      hold: (keep) => {
        for (const s of [child, ...streams]) (keep ? s.ref() : s.unref());
      },
    };
  }

  private async nodeInit(clusterId: string, node: string): Promise<LabeledProcess | undefined> {
    const key = `${clusterId}/${node}`;
    const known = NODE_INITS.get(key);
    if (known !== undefined) {
      const p = await labeledProcess(known);
      // A reused pid fails the check: it must still be this node's init.
      if (p && p.clusterId === clusterId && p.node === node && p.isNodeInit) return p;
      NODE_INITS.delete(key);
    }
    const found = (await scanLabeledProcesses()).find((p) => p.clusterId === clusterId && p.node === node && p.isNodeInit);
    if (found) NODE_INITS.set(key, found.pid);
    return found;
  }

  async reach(_label: ClusterLabel, _hostname: string, address: string, port: number): Promise<{ address: string; port: number }> {
    return { address, port };
  }

  async list(label: ClusterLabel): Promise<NodeStatus[]> {
    const procs = (await scanLabeledProcesses()).filter((p) => p.clusterId === label.id);
    const byNode = new Map<string, LabeledProcess[]>();
    for (const p of procs) byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
    return [...byNode.entries()].map(([hostname, ps]) => {
      const init = ps.find((p) => p.isNodeInit);
      return {
        hostname,
        pid: init?.pid,
        running: init !== undefined,
        processes: [...new Set(ps.filter((p) => !p.isNodeInit && !['unshare', 'sleep', 'bash'].includes(p.comm)).map((p) => p.comm))].sort(),
      };
    });
  }

  async removeByLabel(select: LabelSelector): Promise<LeftoverReport> {
    const matches = (id: string, home: string, name: string): boolean =>
      'id' in select ? id === select.id : home === select.home && !select.keepIds.includes(id) && !select.keepNames.includes(name);
    const report: LeftoverReport = { found: [], removed: [], failed: [] };

    const procs = (await scanLabeledProcesses()).filter((p) => matches(p.clusterId, p.home, p.clusterName));
    if (procs.length > 0) {
      const desc = `${procs.length} process(es) (${[...new Set(procs.map((p) => p.comm))].join(', ')})`;
      report.found.push(desc);
      await this.killProcesses(procs, 0);
      const left = procs.filter((p) => isAlive(p.pid));
      if (left.length === 0) report.removed.push(desc);
      else report.failed.push({ resource: desc, error: 'still running after SIGKILL', retry: `kill -9 ${left.map((p) => p.pid).join(' ')}` });
    }

    for (const rule of (await listLabeledRules()).filter((r) => matches(r.clusterId, r.home, r.clusterName))) {
      const desc = `iptables rule ${rule.spec.join(' ')}`;
      report.found.push(desc);
      const args = deleteRuleArgs(rule);
      const r = await run('iptables', args, { allowFailure: true });
      if (r.exitCode === 0) report.removed.push(desc);
      else report.failed.push({ resource: desc, error: r.stderr.trim(), retry: commandLine('iptables', args) });
    }

    // A node's veth goes when its network namespace does, but the kernel does that lazily; remove any left.
    // Veth names carry only the id, so in gc mode only ids seen with this home's label are taken.
    const bridges = (await listLabeledBridges()).filter((b) => matches(b.clusterId, b.home, b.clusterName));
    const ids = new Set([...procs.map((p) => p.clusterId), ...bridges.map((b) => b.clusterId)]);
    for (const link of (await listNodeLinks()).filter((l) => ('id' in select ? l.clusterId === select.id : ids.has(l.clusterId)))) {
      const desc = `veth ${link.name}`;
      report.found.push(desc);
      const r = await run('ip', ['link', 'del', link.name], { allowFailure: true });
      // The kernel may have removed it meanwhile: gone is gone.
      if (r.exitCode === 0 || /Cannot find device|No such device/i.test(r.stderr)) report.removed.push(desc);
      else report.failed.push({ resource: desc, error: r.stderr.trim(), retry: commandLine('ip', ['link', 'del', link.name]) });
    }

    for (const br of bridges) {
      const desc = `bridge ${br.name}`;
      report.found.push(desc);
      const r = await run('ip', ['link', 'del', br.name], { allowFailure: true });
      if (r.exitCode === 0) report.removed.push(desc);
      else report.failed.push({ resource: desc, error: r.stderr.trim(), retry: commandLine('ip', ['link', 'del', br.name]) });
    }

    // Groups that sandboxed tasks ran in (made by the sandbox plugin in the nodes: slurmkit-<home>-<id>).
    for (const group of await listSandboxGroups()) {
      if (!matches(group.clusterId, group.home, '')) continue;
      const desc = `cgroup ${group.path}`;
      report.found.push(desc);
      const error = await removeGroup(group.path);
      if (error === undefined) report.removed.push(desc);
      else report.failed.push({ resource: desc, error, retry: `find ${group.path} -depth -type d -exec rmdir {} +` });
    }
    return report;
  }
}

/** cgroup v1 controllers the sandbox plugin limits tasks with. */
const SANDBOX_CONTROLLERS = ['pids', 'memory'];

async function listSandboxGroups(): Promise<{ path: string; home: string; clusterId: string }[]> {
  const found: { path: string; home: string; clusterId: string }[] = [];
  for (const controller of SANDBOX_CONTROLLERS) {
    const root = `/sys/fs/cgroup/${controller}`;
    for (const entry of await readdir(root).catch(() => [] as string[])) {
      const m = /^slurmkit-([0-9a-f]+)-([0-9a-f]+)$/.exec(entry);
      if (m) found.push({ path: `${root}/${entry}`, home: m[1]!, clusterId: m[2]! });
    }
  }
  return found;
}

/** Removes a cgroup folder and its children, killing what still runs in them; the error, if it stays. */
async function removeGroup(path: string): Promise<string | undefined> {
  const children = (await readdir(path, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory()).map((d) => `${path}/${d.name}`);
  for (const dir of [...children, path]) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= 50) return `${dir}: ${(err as Error).message}`;
        const pids = (await readFile(`${dir}/cgroup.procs`, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
        for (const pid of pids) signal(pid, 'SIGKILL');
        await sleep(20);
      }
    }
  }
  return undefined;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}
