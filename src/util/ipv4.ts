/** IPv4 addresses as numbers, and CIDR ranges: shared by the address plan and the providers. */

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
