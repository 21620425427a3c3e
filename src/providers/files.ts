/**
 * Files placed into a node (NodeSpec.files): each provider stages them where the node can read
 * them at boot (root-only), and the node installs them after its mounts with this script.
 */
import type { NodeFile } from './types.js';
import { shellQuote as q } from '../util/run.js';

/** Shell that installs each staged file (`${stagedDir}/${i}`) at its path, then removes the staged copies. */
export function installFilesScript(files: NodeFile[] | undefined, stagedDir: string): string {
  if (!files?.length) return '';
  return [
    ...files.map((f, i) => {
      const owner = f.owner ?? 'root';
      return `install -D -m ${(f.mode & 0o7777).toString(8).padStart(4, '0')} -o ${q(owner)} -g "$(id -gn ${q(owner)})" ${q(`${stagedDir}/${i}`)} ${q(f.path)}`;
    }),
    `rm -rf ${q(stagedDir)}`,
  ].join('\n');
}
