import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FIRST_WORKER_OFFSET, LOGIN_OFFSET, type NetworkPlan } from '../spec/types.js';
import { SlurmkitError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { intToIp, ipToInt, parseCidr } from '../util/ipv4.js';
import { slurmkitHome } from './paths.js';

/** Subnets are carved from this pool unless the spec names one. */
export const POOL = { base: '10.213.0.0', prefixLength: 16 };

export { intToIp, ipToInt, parseCidr } from '../util/ipv4.js';

export function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.start < y.start + y.size && y.start < x.start + x.size;
}


/** The smallest prefix that holds the head and every worker with room to grow. */
export function prefixFor(workers: number): number {
  for (let p = 24; p >= 16; p--) {
    if (2 ** (32 - p) - FIRST_WORKER_OFFSET - 1 >= workers) return p;
  }
  throw new SlurmkitError('SPEC_INVALID', `${workers} nodes do not fit in one cluster subnet`);
}

/** Pure: addresses for a subnet. Gateway .1, head .2, login .10, workers from .11 in order. */
export function planNetwork(subnet: string, head: string, workers: string[], login?: string): NetworkPlan {
  const { start, prefixLength, size } = parseCidr(subnet);
  if (workers.length + FIRST_WORKER_OFFSET + 1 > size) {
    throw new SlurmkitError('SPEC_INVALID', `subnet ${subnet} is too small for ${workers.length} nodes`, {
      hint: `use a prefix of /${prefixFor(workers.length)} or shorter in network.subnet`,
    });
  }
  const addresses: Record<string, string> = { [head]: intToIp(start + 2), ...(login ? { [login]: intToIp(start + LOGIN_OFFSET) } : {}) };
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
 * Serializes subnet allocation and cluster creation among slurmkit commands on this machine,
 * whatever their SLURMKIT_HOME: subnets are a host-wide resource. Like iptables' own
 * /run/xtables.lock, the lock file lives in /run/lock (a tmpfs: gone at reboot).
 */
export async function withAllocationLock<T>(fn: () => Promise<T>): Promise<T> {
  await mkdir(slurmkitHome(), { recursive: true, mode: 0o700 });
  const file = existsSync('/run/lock') ? '/run/lock/slurmkit-allocate.lock' : join(slurmkitHome(), 'allocate.lock');
  return withLock(file, { timeoutMs: 30_000, what: 'subnet allocation' }, fn);
}
