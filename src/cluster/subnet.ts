import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetworkPlan } from '../spec/types.js';
import { SlurmkitError } from '../util/errors.js';
import { sleep } from '../util/run.js';
import { slurmkitHome } from './paths.js';

/** Subnets are carved from this pool unless the spec names one. */
export const POOL = { base: '10.213.0.0', prefixLength: 16 };

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): { start: number; size: number; prefixLength: number } {
  const [ip, len] = cidr.split('/');
  const prefixLength = Number(len ?? 32);
  const size = 2 ** (32 - prefixLength);
  return { start: (ipToInt(ip!) & ~(size - 1)) >>> 0, size, prefixLength };
}

export function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.start < y.start + y.size && y.start < x.start + x.size;
}

/** Workers start at .11 so that low addresses stay free for the gateway, head and future services. */
const FIRST_WORKER_OFFSET = 11;

/** The smallest prefix that holds the head and every worker with room to grow. */
export function prefixFor(workers: number): number {
  for (let p = 24; p >= 16; p--) {
    if (2 ** (32 - p) - FIRST_WORKER_OFFSET - 1 >= workers) return p;
  }
  throw new SlurmkitError('SPEC_INVALID', `${workers} nodes do not fit in one cluster subnet`);
}

/** Pure: addresses for a subnet. Gateway .1, head .2, workers from .11 in order. */
export function planNetwork(subnet: string, head: string, workers: string[]): NetworkPlan {
  const { start, prefixLength, size } = parseCidr(subnet);
  if (workers.length + FIRST_WORKER_OFFSET + 1 > size) {
    throw new SlurmkitError('SPEC_INVALID', `subnet ${subnet} is too small for ${workers.length} nodes`, {
      hint: `use a prefix of /${prefixFor(workers.length)} or shorter in network.subnet`,
    });
  }
  const addresses: Record<string, string> = { [head]: intToIp(start + 2) };
  workers.forEach((w, i) => (addresses[w] = intToIp(start + FIRST_WORKER_OFFSET + i)));
  return { subnet: `${intToIp(start)}/${prefixLength}`, prefixLength, gateway: intToIp(start + 1), addresses };
}

/** Picks the first subnet of the pool that no route on this host and no other cluster uses. */
export function pickSubnet(prefixLength: number, taken: string[]): string {
  const pool = parseCidr(`${POOL.base}/${POOL.prefixLength}`);
  const step = 2 ** (32 - prefixLength);
  for (let s = pool.start; s + step <= pool.start + pool.size; s += step) {
    const candidate = `${intToIp(s)}/${prefixLength}`;
    if (!taken.some((t) => overlaps(candidate, t))) return candidate;
  }
  throw new SlurmkitError('CONFLICT', `no free /${prefixLength} subnet left in ${POOL.base}/${POOL.prefixLength}`, {
    hint: 'remove unused clusters (slurmkit list, slurmkit down NAME) or set network.subnet in the spec',
  });
}

/**
 * A host-wide lock around allocation, so two `up`s at once never pick the same subnet.
 * mkdir is atomic; a lock whose owner died is taken over.
 */
export async function withAllocationLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = join(slurmkitHome(), 'alloc.lock');
  await mkdir(slurmkitHome(), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => '0'));
      let alive = owner > 0;
      if (alive) {
        try {
          process.kill(owner, 0);
        } catch {
          alive = false;
        }
      }
      if (!alive && owner > 0) await rm(dir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new SlurmkitError('TIMEOUT', `another slurmkit holds ${dir}`, { hint: `if no slurmkit runs, remove it: rm -r ${dir}` });
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
