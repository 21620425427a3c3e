/**
 * Command channels into clusters' heads, for long-lived processes of this machine (the server):
 * one process per head (channel-main.js, started through the provider's `open`), to which each
 * command is a line, instead of one process chain from here per command (spawn, nsenter or the
 * engine's exec, sh, runuser). A program that runs one command and exits stays on `exec`.
 *
 * A request under way when its channel ends is answered COMMAND_FAILED, never sent again: a
 * command like sbatch may have run. The next request starts a new channel. A head whose
 * channel cannot start (a provider without `open`, a node image from an older install) gets
 * `exec`, as before.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ClusterLabel, ExecResult, NodeProcess, NodeProvider } from '../providers/types.js';
import { SlurmkitError } from '../util/errors.js';

/** The channel's program, as nodes see it (this install's Node and dist/ are on every provider's nodes). */
const CHANNEL_MAIN = fileURLToPath(new URL('./channel-main.js', import.meta.url));
/** How long a channel may take to say it is ready before its head falls back to exec. */
const READY_MS = 15_000;

export interface HeadCommand {
  command: string[];
  /** A user of the cluster (name or uid); default root. */
  user?: string;
  cwd?: string;
  input?: string;
  /**
   * Through a channel: have the next identical command started ahead, waiting for its input
   * (for one that reads its input last and is asked again and again, like sbatch).
   */
  warm?: boolean;
}

interface Pending {
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
}

class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private ended = false;
  /** It said it was ready (it runs this install's channel-main.js). */
  wasReady = false;

  private constructor(
    private readonly proc: NodeProcess,
    private readonly where: string,
    readonly ready: Promise<boolean>,
    private readonly onEnd: () => void,
  ) {}

  static start(proc: NodeProcess, where: string, onEnd: () => void): Channel {
    let markReady: (ok: boolean) => void = () => undefined;
    const ready = new Promise<boolean>((resolve) => (markReady = resolve));
    const channel = new Channel(proc, where, ready, onEnd);
    const timer = setTimeout(() => {
      markReady(false);
      proc.close();
    }, READY_MS);
    timer.unref();
    createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => {
      let msg: { ready?: boolean; id?: number; exitCode?: number; stdout?: string; stderr?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.ready) {
        channel.wasReady = true;
        clearTimeout(timer);
        markReady(true);
        return;
      }
      const p = msg.id === undefined ? undefined : channel.pending.get(msg.id);
      if (!p) return;
      channel.pending.delete(msg.id!);
      if (channel.pending.size === 0) proc.hold(false);
      p.resolve({ exitCode: msg.exitCode ?? 1, stdout: msg.stdout ?? '', stderr: msg.stderr ?? '' });
    });
    void proc.exited.then((code) => {
      clearTimeout(timer);
      markReady(false);
      channel.end(`its process ended with exit code ${code}${proc.stderrTail().trim() ? `: ${proc.stderrTail().trim().split('\n').slice(-2).join(' ')}` : ''}`);
    });
    // Held while it starts and while commands are under way; idle, it lets this process exit.
    proc.hold(true);
    void ready.then(() => channel.pending.size === 0 && proc.hold(false));
    return channel;
  }

  run(cmd: HeadCommand): Promise<ExecResult> {
    if (this.ended) return Promise.reject(new SlurmkitError('COMMAND_FAILED', `the command channel of ${this.where} has ended`));
    const id = this.nextId++;
    return new Promise<ExecResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.hold(true);
      const req = { id, argv: cmd.command, ...(cmd.user ? { user: cmd.user } : {}), cwd: cmd.cwd ?? '/', ...(cmd.input === undefined ? {} : { input: cmd.input }), ...(cmd.warm ? { warm: true } : {}) };
      this.proc.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    for (const p of this.pending.values()) {
      p.reject(new SlurmkitError('COMMAND_FAILED', `the command channel of ${this.where} ended while a command was under way (${why}); it was not run again`));
    }
    this.pending.clear();
    this.proc.close();
  }
}

/** Holders that keep channels (servers of this process); with none, every command is an exec. */
let holders = 0;
/** Open channels, by cluster id and head; a head whose channel could not start maps to 'exec'. */
const channels = new Map<string, Promise<Channel | 'exec'>>();

/**
 * Lets this process keep channels into heads until the returned function is called (a
 * long-lived server: from its start to its close). The last release ends every channel.
 */
export function keepHeadChannels(): () => void {
  holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders > 0) return;
    for (const c of channels.values()) void c.then((ch) => ch !== 'exec' && ch.end('closed'), () => undefined);
    channels.clear();
  };
}

/** Whether a head's commands go through a channel right now (for tests and the bench). */
export async function channelOpen(label: ClusterLabel, node: string): Promise<boolean> {
  const c = channels.get(`${label.id}/${node}`);
  return c !== undefined && (await c) !== 'exec';
}

async function channelFor(provider: NodeProvider, label: ClusterLabel, node: string): Promise<Channel | 'exec'> {
  const key = `${label.id}/${node}`;
  let c = channels.get(key);
  if (!c) {
    c = (async () => {
      if (!provider.open) return 'exec' as const;
      const proc = await provider.open({ label, node, command: [process.execPath, CHANNEL_MAIN] });
      const ch: Channel = Channel.start(proc, `${label.name}'s ${node}`, () => {
        // One that ran ends with its node (stopped, restarted): the next command opens a new one.
        // One that never said it was ready (no channel-main.js in an older node image) is not tried again.
        if (ch.wasReady && channels.get(key) === c) channels.delete(key);
      });
      return (await ch.ready) ? ch : ('exec' as const);
    })();
    channels.set(key, c);
    // A node that is not running now may run later: only a channel that started is remembered.
    c.catch(() => channels.delete(key));
  }
  return c;
}

/** Runs a command in a cluster's head: through its channel where this process keeps channels, else with exec. */
export async function runInNode(provider: NodeProvider, label: ClusterLabel, node: string, cmd: HeadCommand): Promise<ExecResult> {
  const exec = () =>
    provider.exec({
      label,
      node,
      command: cmd.command,
      stdio: 'capture',
      cwd: cmd.cwd ?? '/',
      ...(cmd.user ? { user: cmd.user } : {}),
      ...(cmd.input === undefined ? {} : { input: cmd.input }),
    });
  if (holders === 0) return exec();
  const ch = await channelFor(provider, label, node);
  return ch === 'exec' ? exec() : ch.run(cmd);
}
