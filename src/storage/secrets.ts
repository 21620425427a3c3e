import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SlurmkitError } from '../util/errors.js';
import type { BlobPaths } from './paths.js';

/** A folder only its owner can enter. */
export async function ensureSecretDir(dir: string): Promise<void> {
  await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Replaces a 0600 file atomically; never briefly readable by others, never half-written. */
export async function writeSecretFile(path: string, content: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === content) return;
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

export interface Account {
  name: string;
  key: string;
}

const ACCOUNT_LINE = /^([a-z0-9]{3,24}):([A-Za-z0-9+/=]{8,})$/;

/**
 * The cluster's Azurite account, generated at first use. Created with link(2), which fails if
 * another slurmkit got there first, so two commands racing agree on one key.
 */
export async function ensureAccount(paths: BlobPaths): Promise<Account> {
  await ensureSecretDir(paths.secrets);
  const existing = await readAccount(paths);
  if (existing) return existing;
  const fresh: Account = { name: `sk${randomBytes(5).toString('hex')}`, key: randomBytes(64).toString('base64') };
  const tmp = `${paths.account}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${fresh.name}:${fresh.key}`, { mode: 0o600, flag: 'wx' });
    await link(tmp, paths.account).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(tmp, { force: true });
  }
  const account = await readAccount(paths);
  if (!account) throw new SlurmkitError('INTERNAL', `could not create ${paths.account}`);
  return account;
}

async function readAccount(paths: BlobPaths): Promise<Account | undefined> {
  let text: string;
  try {
    text = (await readFile(paths.account, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const m = ACCOUNT_LINE.exec(text);
  if (!m) {
    throw new SlurmkitError('PRECONDITION', `${paths.account} is damaged (expected ACCOUNT:BASE64KEY)`, {
      hint: `remove it to get a new account (blobs stored under the old one become unreachable): rm ${paths.account}`,
    });
  }
  return { name: m[1]!, key: m[2]! };
}
