/**
 * The server's bearer token: made at first start, kept in $SLURMKIT_HOME/server/token (0600,
 * in a 0700 folder), shown once, replaced by `slurmkit token --rotate`. The server reads the
 * file again when it changes, so a rotated token stops working at once, without a restart.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { slurmkitHome } from '../cluster/paths.js';
import { ensureSecretDir, writeSecretFile } from '../storage/secrets.js';

export const serverDir = (): string => join(slurmkitHome(), 'server');
export const tokenPath = (): string => join(serverDir(), 'token');

const newToken = (): string => `skt_${randomBytes(32).toString('base64url')}`;

/** The token, made if there is none; `created` tells the caller to show it (once). */
export async function ensureToken(): Promise<{ token: string; created: boolean }> {
  await ensureSecretDir(serverDir());
  const existing = await readFile(tokenPath(), 'utf8').catch(() => undefined);
  if (existing?.trim()) return { token: existing.trim(), created: false };
  const token = newToken();
  const tmp = `${tokenPath()}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${token}\n`, { mode: 0o600, flag: 'wx' });
    // link(2) fails if another server got there first: both then use the one that won.
    const won = await link(tmp, tokenPath()).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw err;
      },
    );
    if (!won) return { token: (await readFile(tokenPath(), 'utf8')).trim(), created: false };
  } finally {
    await rm(tmp, { force: true });
  }
  return { token, created: true };
}

/** A new token replaces the old one, which stops working at once. */
export async function rotateToken(): Promise<string> {
  await ensureSecretDir(serverDir());
  const token = newToken();
  await writeSecretFile(tokenPath(), `${token}\n`);
  return token;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Checks presented tokens against the file, read again only when it changed (inode, size or mtime). */
export class TokenCheck {
  private key = '';
  private expected: Buffer | undefined;

  async accepts(presented: string | undefined): Promise<boolean> {
    const expected = await this.current();
    if (!presented || !expected) return false;
    // Digests have one length, so the comparison takes the same time whatever was sent.
    return timingSafeEqual(digest(presented), expected);
  }

  private async current(): Promise<Buffer | undefined> {
    const s = await stat(tokenPath()).catch(() => undefined);
    if (!s) return (this.expected = undefined);
    const key = `${s.ino}:${s.size}:${s.mtimeMs}`;
    if (key !== this.key) {
      const text = (await readFile(tokenPath(), 'utf8').catch(() => '')).trim();
      this.expected = text ? digest(text) : undefined;
      this.key = key;
    }
    return this.expected;
  }
}
