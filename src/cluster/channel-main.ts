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
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';

interface Request {
  id: number;
  argv: string[];
  user?: string;
  cwd?: string;
  input?: string;
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

function runOne(req: Request): void {
  let answered = false;
  const answer = (exitCode: number, stdout: string, stderr: string): void => {
    if (answered) return;
    answered = true;
    send({ id: req.id, exitCode, stdout, stderr });
  };
  if (!Array.isArray(req.argv) || req.argv.length === 0 || !req.argv.every((a) => typeof a === 'string')) {
    answer(2, '', 'channel: argv must be a non-empty list of strings\n');
    return;
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  let ids: { uid: number; gid: number } | undefined;
  if (req.user !== undefined && req.user !== 'root' && req.user !== '0') {
    const a = account(req.user);
    if (!a) {
      answer(1, '', `channel: no user ${req.user} on this node\n`);
      return;
    }
    ids = { uid: a.uid, gid: a.gid };
    Object.assign(env, { HOME: a.home, SHELL: a.shell, USER: req.user, LOGNAME: req.user });
  }
  const cwd = req.cwd && existsSync(req.cwd) ? req.cwd : '/';
  const child = spawn(req.argv[0]!, req.argv.slice(1), { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], ...(ids ?? {}) });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => undefined);
  child.once('error', (e) => answer(127, '', `channel: could not run ${req.argv[0]}: ${e.message}\n`));
  child.once('close', (code, signal) => {
    const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 15) : 15);
    answer(exitCode, Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8'));
  });
  child.stdin.end(req.input ?? '');
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
});
send({ ready: true });
