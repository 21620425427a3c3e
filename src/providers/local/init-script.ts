import type { Mount, NodeSpec } from '../types.js';
import { SlurmkitError } from '../../util/errors.js';
import { shellQuote as q } from '../../util/run.js';
import { existsSync } from 'node:fs';

/** Written by the node once its boot commands have run: "ok" or "failed <exit code>". */
export const statusFile = (workDir: string, hostname: string): string => `${workDir}/${hostname}.status`;
export const initFile = (workDir: string, hostname: string): string => `${workDir}/${hostname}.init.sh`;

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Mount targets must already exist on the host, or lie under a tmpfs this node mounted
 * earlier: creating a folder on the shared host filesystem would change the host.
 */
export function checkMounts(hostname: string, mounts: Mount[]): void {
  const tmpfs: string[] = [];
  mounts.forEach((m, i) => {
    if (!m.target.startsWith('/')) {
      throw new SlurmkitError('INTERNAL', `node ${hostname}: mount ${i} target ${m.target} is not absolute`);
    }
    const underTmpfs = tmpfs.some((t) => isUnder(m.target, t) && m.target !== t);
    if (!underTmpfs && !existsSync(m.target)) {
      throw new SlurmkitError('PRECONDITION', `node ${hostname}: mount point ${m.target} does not exist on this machine`, {
        hint: 'install the package that provides it (see `slurmkit doctor`)',
      });
    }
    if (m.type === 'bind' && !existsSync(m.source)) {
      throw new SlurmkitError('INTERNAL', `node ${hostname}: bind source ${m.source} does not exist`);
    }
    if (m.type === 'tmpfs') tmpfs.push(m.target);
  });
}

function mountLines(mounts: Mount[], tmpfsTargets: string[]): string[] {
  const lines: string[] = [];
  for (const m of mounts) {
    if (tmpfsTargets.some((t) => isUnder(m.target, t) && m.target !== t)) lines.push(`mkdir -p ${q(m.target)}`);
    if (m.type === 'tmpfs') {
      const opts = [`mode=${m.mode ?? '0755'}`, ...(m.sizeMiB ? [`size=${m.sizeMiB}m`] : [])].join(',');
      lines.push(`mount -t tmpfs -o ${opts} tmpfs ${q(m.target)}`);
      tmpfsTargets.push(m.target);
    } else {
      // util-linux applies "ro" to a bind mount itself (one process instead of bind + remount).
      lines.push(`mount --bind ${m.readOnly ? '-o ro ' : ''}${q(m.source)} ${q(m.target)}`);
    }
  }
  return lines;
}

/**
 * The node's init: PID 1 of the node's PID namespace, so killing it ends every process in
 * the node. It waits for the host to plug in eth0, configures network, hostname and mounts,
 * runs the boot commands, then reaps orphans until told to stop.
 */
export function renderInitScript(node: NodeSpec, prefixLength: number, workDir: string): string {
  const status = statusFile(workDir, node.hostname);
  return [
    '#!/bin/bash',
    `# slurmkit node ${node.hostname}: PID 1 of its own PID namespace. Generated; do not edit.`,
    'set -eu',
    '# The host writes one line on stdin once our eth0 is in place.',
    'read -r _go || true',
    'exec </dev/null',
    'ip -batch - <<NET',
    'link set lo up',
    `addr add ${node.address}/${prefixLength} dev eth0`,
    'link set eth0 up',
    'NET',
    `echo ${q(node.hostname)} > /proc/sys/kernel/hostname`,
    ...mountLines(node.mounts, []),
    'set +e',
    '(',
    'set -e',
    node.boot,
    ')',
    'rc=$?',
    `if [ $rc -ne 0 ]; then echo "slurmkit: boot of ${node.hostname} failed with exit code $rc"; echo "failed $rc" > ${q(status)}; exit $rc; fi`,
    // The host reads this file until it starts with "ok"; a partly written file does not.
    `echo ok > ${q(status)}`,
    '# Stop: ask every process in the node to end, give them time to save state, then leave.',
    "trap 'kill -TERM -1 2>/dev/null; for _ in {1..100}; do kill -0 -1 2>/dev/null || break; sleep 0.1; done; exit 0' TERM INT",
    'while :; do sleep 86400 & wait $!; done',
    '',
  ].join('\n');
}
