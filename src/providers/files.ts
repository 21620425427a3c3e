/**
 * Files placed into a node (NodeSpec.files): each provider stages them where the node can read
 * them at boot (root-only), and the node installs them after its mounts with this script.
 */
import type { NodeFile } from './types.js';
import { shellQuote as q } from '../util/run.js';

/**
 * Shell that installs each staged file (`${stagedDir}/${i}`) at its path, then removes the
 * staged copies. A file is written in place, its owner and mode set before its content: a path
 * the engine itself mounted (Docker's /etc/hosts) cannot be replaced, only rewritten.
 */
export function installFilesScript(files: NodeFile[] | undefined, stagedDir: string): string {
  if (!files?.length) return '';
  return [
    ...files.map((f, i) => {
      const owner = q(f.owner ?? 'root');
      const path = q(f.path);
      return [
        `(umask 022 && mkdir -p "$(dirname ${path})")`,
        `(umask 077 && : >> ${path})`,
        `chown ${owner}:"$(id -gn ${owner})" ${path}`,
        `chmod ${(f.mode & 0o7777).toString(8).padStart(4, '0')} ${path}`,
        `cat ${q(`${stagedDir}/${i}`)} > ${path}`,
      ].join(' && ');
    }),
    `rm -rf ${q(stagedDir)}`,
  ].join('\n');
}
