/**
 * The pipeline benchmark's reference: one process on this machine doing what the batch's tasks
 * do, with the same code: download each blob over its signed URL, convert it with the same
 * converter, upload the result. Four blobs per core in flight (REF_INFLIGHT overrides): on 2
 * cores two in flight was the slowest (16.1 s for 1,000 photos), and 8, 16 and 24 were the same
 * within run-to-run noise (12.1-16.1 s).
 *   node dist/bench/single-task.js <plan.json>   (plan: { blobs: BatchBlob[] } with getUrl/putUrl)
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { signedUrlIo } from '../jobs/blob-io.js';
import { grayscale } from '../jobs/grayscale.js';
import type { BatchBlob } from '../jobs/manifest.js';

const plan = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as { blobs: BatchBlob[] };
const io = signedUrlIo();
let next = 0;
await Promise.all(
  Array.from({ length: Number(process.env.REF_INFLIGHT ?? 4 * availableParallelism()) }, async () => {
    while (next < plan.blobs.length) {
      const blob = plan.blobs[next++]!;
      await io.put(blob, (await grayscale(await io.get(blob))).data);
    }
  }),
);
