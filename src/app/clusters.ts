/**
 * The application layer's cluster verbs: the lifecycle with the services a head runs beside
 * Slurm (blob storage). The CLI, benchmarks and tests that need the whole site call these.
 */
import * as lifecycle from '../cluster/lifecycle.js';
import type { HeadService } from '../cluster/services.js';
import type { Progress } from '../util/progress.js';
import { blobService } from '../storage/service.js';

export const headServices = (): HeadService[] => [blobService];

export const up = (opts: lifecycle.UpOptions) => lifecycle.up({ services: headServices(), ...opts });

export const start = (name: string, progress?: Progress, readyTimeoutMs?: number) => lifecycle.start(name, progress, readyTimeoutMs, headServices());

export { stop, down, gc, type DownResult, type UpOptions } from '../cluster/lifecycle.js';

export { addNodes, terminateNodes, removeNodes, resize, type ScaleResult } from '../cluster/scale.js';

// What exists and what runs, for the CLI and the server alike.
export { listClusters, listNodes, showCluster, type ClusterView, type NodeView } from '../cluster/inspect.js';
export { readState, requireState, listStates } from '../cluster/state.js';
export { slurmNodes } from '../cluster/nodes.js';
export { keepHeadChannels, channelOpen } from '../cluster/head-channel.js';
export { jupyterAccess, type JupyterAccess } from '../cluster/login.js';
