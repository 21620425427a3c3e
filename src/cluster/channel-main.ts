/**
 * A cluster head's command channel: `node channel-main.js`, started inside the head by a
 * long-lived process of this machine (the server) through the provider's `open`. It reads one
 * request per line on stdin and answers one line each on stdout, in any order, by id:
 *   → {"id":1,"argv":["sbatch","--parsable"],"user":"alice","cwd":"/home/alice","input":"#!/bin/bash\n..."}
 *   ← {"id":1,"exitCode":0,"stdout":"42\n","stderr":""}
 * Commands run as the head's user (looked up in the head's /etc/passwd), in the folder (or / when
 * the node has no such folder), with the environment `runuser` would give them. The first line
 * it writes is {"ready":true}; it ends when its stdin ends. It imports nothing of slurmkit, so
 * that it starts fast and runs on every node that has this install (every provider's nodes do).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';

interface Request {
  id: number;
  argv: string[];
  user?: string;
  cwd?: string;
  input?: string;
  /** Start identical commands ahead (see WARM_IDLE_MS). */
  warm?: boolean;
}

interface Account {
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

const send = (answer: object): void => void process.stdout.write(`${JSON.stringify(answer)}\n`);

/** A user of the head, by name or uid, from its /etc/passwd (the cluster's users are there). */
function account(user: string): Account | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid, gid, , home, shell] = line.split(':');
    if (name === user || uid === user) return { uid: Number(uid), gid: Number(gid), home: home || '/', shell: shell || '/bin/sh' };
  }
  return undefined;
}

/** A started command: its result once it has ended. */
interface Started {
  child: ChildProcess;
  result: Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** It ended (or failed to start) before being given its input. */
  gone: boolean;
}

/** Starts a request's command with its input still open (the caller writes and ends it). */
function startCommand(req: Request): Started | string {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  let argv = req.argv;
  if (req.user !== undefined && req.user !== 'root' && req.user !== '0') {
    const a = account(req.user);
    if (!a) return `channel: no user ${req.user} on this node\n`;
    // With the user's supplementary groups too (a spawn's uid and gid options would drop them).
    argv = ['setpriv', `--reuid=${a.uid}`, `--regid=${a.gid}`, '--init-groups', '--', ...argv];
    Object.assign(env, { HOME: a.home, SHELL: a.shell, USER: req.user, LOGNAME: req.user });
  }
  const cwd = req.cwd && existsSync(req.cwd) ? req.cwd : '/';
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => undefined);
  const started: Started = { child, gone: false, result: Promise.resolve({ exitCode: 0, stdout: '', stderr: '' }) };
  started.result = new Promise((resolve) => {
    child.once('error', (e) => {
      started.gone = true;
      resolve({ exitCode: 127, stdout: '', stderr: `channel: could not run ${req.argv[0]}: ${e.message}\n` });
    });
    child.once('close', (code, signal) => {
      started.gone = true;
      resolve({ exitCode: code ?? 128 + (signal ? (constants.signals[signal] ?? 15) : 15), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
  return started;
}

/**
 * Warm commands: for a request marked `warm`, identical commands (same argv, user and folder)
 * are started ahead as soon as this one has been given its input, and wait for their own
 * input: as many as such requests were under way at once (up to WARM_MAX). A program that reads
 * its input last (sbatch reads the script after loading its plugins and slurm.conf) then only
 * has its work left when a request comes. Unused ones are killed WARM_IDLE_MS after the last
 * such request, and with the channel: killed before they read anything, they do nothing.
 */
const WARM_IDLE_MS = 30_000;
const WARM_MAX = 8;
interface Warm {
  pool: Started[];
  underWay: number;
  timer?: NodeJS.Timeout;
}
const warm = new Map<string, Warm>();
const warmKey = (req: Request): string => JSON.stringify([req.argv, req.user ?? 'root', req.cwd ?? '/']);

function killPool(key: string): void {
  const w = warm.get(key);
  if (!w) return;
  for (const started of w.pool) started.child.kill('SIGKILL');
  w.pool = [];
  if (w.underWay === 0) warm.delete(key);
}

function runOne(req: Request): void {
  const answer = (exitCode: number, stdout: string, stderr: string): void => send({ id: req.id, exitCode, stdout, stderr });
  if (!Array.isArray(req.argv) || req.argv.length === 0 || !req.argv.every((a) => typeof a === 'string')) {
    answer(2, '', 'channel: argv must be a non-empty list of strings\n');
    return;
  }
  const key = warmKey(req);
  let w: Warm | undefined;
  let started: Started | string | undefined;
  if (req.warm) {
    w = warm.get(key) ?? { pool: [], underWay: 0 };
    warm.set(key, w);
    w.underWay++;
    clearTimeout(w.timer);
    while (!started && w.pool.length > 0) {
      const next = w.pool.shift()!;
      if (!next.gone) started = next;
    }
  }
  started ??= startCommand(req);
  if (typeof started === 'string') {
    if (w) w.underWay--;
    answer(1, '', started);
    return;
  }
  started.child.stdin!.end(req.input ?? '');
  if (w) {
    // As many waiting as were asked for at once, this one included.
    for (let want = Math.min(WARM_MAX, w.underWay); w.pool.length < want; ) {
      const next = startCommand(req);
      if (typeof next === 'string') break;
      w.pool.push(next);
    }
  }
  void started.result.then((r) => {
    if (w) {
      w.underWay--;
      clearTimeout(w.timer);
      w.timer = setTimeout(() => killPool(key), WARM_IDLE_MS);
    }
    answer(r.exitCode, r.stdout, r.stderr);
  });
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let req: Request;
  try {
    req = JSON.parse(line) as Request;
  } catch {
    process.stderr.write(`channel: not a JSON request: ${line.slice(0, 200)}\n`);
    return;
  }
  runOne(req);
});
// Ends with its stdin; commands under way finish first (their answers are still written).
lines.on('close', () => {
  process.stdin.destroy();
  for (const [key, w] of warm) {
    clearTimeout(w.timer);
    w.underWay = 0;
    killPool(key);
  }
});
send({ ready: true });
