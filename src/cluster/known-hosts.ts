/**
 * The swarm hosts that clusters of this SLURMKIT_HOME have used, kept so that `gc` looks for
 * leftovers there too once a cluster's folder (and with it the hosts in its state) is gone. One
 * small file per endpoint, each written whole; an unreadable one is skipped.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ProviderHost } from '../providers/types.js';
import { slurmkitHome } from './paths.js';

const hostSchema = z.object({ name: z.string().min(1), endpoint: z.string().min(1), tlsCertPath: z.string().min(1).optional() });

const folder = () => join(slurmkitHome(), 'swarm-hosts');

/** Records hosts a cluster is about to use (before anything is made on them). */
export async function rememberHosts(hosts: readonly ProviderHost[]): Promise<void> {
  await mkdir(folder(), { recursive: true, mode: 0o700 });
  for (const h of hosts) {
    const file = join(folder(), `${createHash('sha256').update(h.endpoint).digest('hex').slice(0, 16)}.json`);
    const text = `${JSON.stringify({ name: h.name, endpoint: h.endpoint, ...(h.tlsCertPath ? { tlsCertPath: h.tlsCertPath } : {}) })}\n`;
    if ((await readFile(file, 'utf8').catch(() => '')) === text) continue;
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, file);
  }
}

/** Every host recorded, each endpoint once (names made unique for messages). */
export async function knownHosts(): Promise<ProviderHost[]> {
  const files = (await readdir(folder()).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
  const hosts: ProviderHost[] = [];
  for (const f of files) {
    const parsed = hostSchema.safeParse(await readFile(join(folder(), f), 'utf8').then((t) => JSON.parse(t) as unknown, () => undefined));
    if (!parsed.success || hosts.some((h) => h.endpoint === parsed.data.endpoint)) continue;
    const name = hosts.some((h) => h.name === parsed.data.name) ? `${parsed.data.name}@${parsed.data.endpoint}` : parsed.data.name;
    hosts.push({ ...parsed.data, name, ...(parsed.data.tlsCertPath ? { tlsCertPath: parsed.data.tlsCertPath } : {}) });
  }
  return hosts;
}
