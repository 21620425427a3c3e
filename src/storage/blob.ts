/**
 * Blob storage for clusters through the Azure Blob API: the cluster's own Azurite inside its
 * head node by default, or a real account when AZURE_STORAGE_CONNECTION_STRING is set.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { headOf, labelOf, providerFor } from '../cluster/nodes.js';
import { requireState, type ClusterState } from '../cluster/state.js';
import { SlurmkitError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { AZURITE_PORT, startAzurite } from './azurite.js';
import { formatConnectionString, parseConnectionString, readConnectionStringFile } from './connection-string.js';
import { BlobPaths } from './paths.js';
import { ensureAccount, ensureSecretDir, writeSecretFile } from './secrets.js';
import type { BlobStore } from './store.js';
import type { BlobEndpoint } from './types.js';

export type { BlobEndpoint, BlobInfo, ContainerInfo } from './types.js';
export type { BlobStore, GetOptions, PutOptions } from './store.js';
export { BlobPaths } from './paths.js';

/** The Azure SDK takes about half a second to load: only commands that talk to storage pay for it. */
const client = () => import('./store.js');

export const CONNECTION_STRING_ENV = 'AZURE_STORAGE_CONNECTION_STRING';

/** `<cluster>/blob.json`: what is configured; no secrets. */
interface BlobConfig {
  version: 1;
  /** Which account commands and jobs use. */
  active: 'azurite' | 'azure';
  /** Set once Azurite was enabled: `start` brings it back. */
  azurite?: { account: string; url: string; nodeUrl?: string; enabledAt: string };
  azure?: { url: string; enabledAt: string };
}

async function readConfig(paths: BlobPaths): Promise<BlobConfig | undefined> {
  try {
    return JSON.parse(await readFile(paths.config, 'utf8')) as BlobConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SlurmkitError('INTERNAL', `cannot read ${paths.config}: ${(err as Error).message}`);
  }
}

async function saveConfig(paths: BlobPaths, config: BlobConfig): Promise<void> {
  const text = `${JSON.stringify(config, null, 2)}\n`;
  if ((await readFile(paths.config, 'utf8').catch(() => '')) === text) return;
  const tmp = `${paths.config}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, paths.config);
}

/** Writes the connection string commands use, in the secrets folder (jobs get theirs from openBlobStore). */
async function writeConnectionStrings(paths: BlobPaths, connectionString: string): Promise<void> {
  await writeSecretFile(paths.connectionString, connectionString);
}

function endpointOf(cluster: string, kind: BlobEndpoint['kind'], url: string, connectionString?: string, nodeUrl?: string): BlobEndpoint {
  const file = BlobPaths.of(cluster).connectionString;
  return {
    kind,
    cluster,
    url,
    ...(nodeUrl && nodeUrl !== url ? { nodeUrl } : {}),
    connectionStringFile: BlobPaths.of(cluster).jobsConnectionString,
    // The string this command settled on, so a concurrent command switching accounts cannot swap it underneath.
    connectionString: async () => connectionString ?? (await readFile(file, 'utf8')).trim(),
  };
}

async function requireHeadRunning(state: ClusterState): Promise<void> {
  const head = headOf(state).name;
  const running = (await providerFor(state).list(labelOf(state))).some((n) => n.hostname === head && n.running);
  if (!running) {
    throw new SlurmkitError('CONFLICT', `cluster ${state.name} is not running (phase ${state.phase}), so its blob storage is not either`, {
      hint: `slurmkit start ${state.name}`,
    });
  }
}

export interface EnsureOptions {
  progress?: Progress;
  /** How long to wait for a starting Azurite to answer. */
  timeoutMs?: number;
  /** false: launch Azurite and return without waiting for it to answer (`up`); the next command waits. */
  wait?: boolean;
}

/**
 * Azurite in the head, started if it does not answer. With `activate`, it becomes the account
 * that commands and jobs use (its connection string is written for jobs).
 */
async function ensureAzurite(state: ClusterState, activate: boolean, opts: EnsureOptions): Promise<BlobEndpoint> {
  const paths = BlobPaths.of(state.name);
  const progress = opts.progress ?? Progress.silent();
  await requireHeadRunning(state);
  const account = await ensureAccount(paths);
  // Nodes reach it at the head's address; this machine there too, or where the provider published it (a swarm).
  const head = headOf(state);
  const nodeUrl = `http://${head.address}:${AZURITE_PORT}/${account.name}`;
  const here = await providerFor(state).reach(labelOf(state), head.name, head.address, AZURITE_PORT);
  const url = `http://${here.address}:${here.port}/${account.name}`;
  const cs = formatConnectionString({ accountName: account.name, accountKey: account.key, blobEndpoint: url });
  const { probeService } = await client();
  const probe = async () => (await probeService(cs, 'probe')).result;
  const first = await probe();
  if (first === 'rejected' || first === 'foreign') {
    throw new SlurmkitError('PRECONDITION', `something on ${headOf(state).name}:${AZURITE_PORT} answers but does not take the cluster's account`, {
      hint: `restart the cluster's services: slurmkit stop ${state.name} && slurmkit start ${state.name}`,
    });
  }
  if (first !== 'ok') {
    await progress.phase(`start blob storage (Azurite) on ${headOf(state).name}`, () =>
      startAzurite(state, paths, account, probe, opts.timeoutMs ?? 20_000, opts.wait ?? true),
    );
  }
  const config = (await readConfig(paths)) ?? { version: 1, active: 'azurite' };
  const azurite =
    config.azurite?.account === account.name && config.azurite.url === url && config.azurite.nodeUrl === nodeUrl
      ? config.azurite
      : { account: account.name, url, nodeUrl, enabledAt: config.azurite?.account === account.name ? config.azurite.enabledAt : new Date().toISOString() };
  if (activate) await writeConnectionStrings(paths, cs);
  await saveConfig(paths, { ...config, active: activate ? 'azurite' : config.active, azurite });
  return endpointOf(state.name, 'azurite', url, cs, nodeUrl);
}

async function useAzure(state: ClusterState, connectionString: string, source = CONNECTION_STRING_ENV): Promise<BlobEndpoint> {
  const paths = BlobPaths.of(state.name);
  const info = parseConnectionString(connectionString, source);
  // Checked before it is recorded, so a wrong string never replaces a working one for jobs.
  const { probeService } = await client();
  const { result, error } = await probeService(connectionString, 'control');
  if (result !== 'ok' && !(result === 'rejected' && info.auth === 'sas')) {
    const { mapBlobError } = await import('./errors.js');
    throw mapBlobError(error, { cluster: state.name, kind: 'azure', url: info.blobEndpoint, secrets: [] }, { what: 'list containers' });
  }
  await ensureSecretDir(paths.secrets);
  await writeConnectionStrings(paths, connectionString);
  const config = (await readConfig(paths)) ?? { version: 1, active: 'azure' };
  const azure = config.azure?.url === info.blobEndpoint ? config.azure : { url: info.blobEndpoint, enabledAt: new Date().toISOString() };
  await saveConfig(paths, { ...config, active: 'azure', azure });
  return endpointOf(state.name, 'azure', info.blobEndpoint, connectionString);
}

/**
 * Starts (if needed) and returns the blob endpoint of a cluster; idempotent and fast when it
 * already runs. With AZURE_STORAGE_CONNECTION_STRING set, that account is checked and used
 * instead (and becomes the one jobs see). Otherwise the spec decides: Azurite in the head
 * (which needs the cluster running, CONFLICT otherwise), the real account whose connection
 * string is in storage.connectionStringFile, or none (CONFLICT). A malformed connection string
 * is SPEC_INVALID.
 */
export async function ensureBlobStorage(clusterName: string, opts: EnsureOptions = {}): Promise<BlobEndpoint> {
  const state = await requireState(clusterName);
  const azure = process.env[CONNECTION_STRING_ENV]?.trim();
  if (azure) return useAzure(state, azure);
  const spec = state.storage ?? { blob: 'azurite' };
  if (spec.blob === 'none') {
    throw new SlurmkitError('CONFLICT', `cluster ${clusterName} has no blob storage: its spec says storage.blob: none`, {
      hint: `give a real account for this command with ${CONNECTION_STRING_ENV}, or make a cluster with storage.blob: azurite`,
    });
  }
  if (spec.blob === 'azure' && spec.connectionStringFile) return useSpecAccount(state, spec.connectionStringFile);
  return ensureAzurite(state, true, opts);
}

/** The real account whose connection string is in the spec's storage.connectionStringFile. */
async function useSpecAccount(state: ClusterState, file: string): Promise<BlobEndpoint> {
  return useAzure(state, await readConnectionStringFile(file), `storage.connectionStringFile (${file})`);
}

/**
 * For `up`: brings up the blob storage the spec asks for (Azurite in the head, or the real
 * account of storage.connectionStringFile); undefined for storage.blob: none. The environment
 * plays no part here: AZURE_STORAGE_CONNECTION_STRING is for single commands.
 */
export async function startSpecBlobStorage(clusterName: string, opts: EnsureOptions = {}): Promise<BlobEndpoint | undefined> {
  const state = await requireState(clusterName);
  const spec = state.storage ?? { blob: 'none' };
  if (spec.blob === 'azurite') return ensureAzurite(state, true, opts);
  if (spec.blob === 'azure' && spec.connectionStringFile) return useSpecAccount(state, spec.connectionStringFile);
  return undefined;
}

/**
 * For the end of `start`: brings the cluster's Azurite back if it was ever enabled; a no-op
 * (undefined) otherwise. Does not change which account is active. Rejects like ensureBlobStorage.
 */
export async function resumeBlobStorage(clusterName: string, opts: EnsureOptions = {}): Promise<BlobEndpoint | undefined> {
  const state = await requireState(clusterName);
  const config = await readConfig(BlobPaths.of(clusterName));
  if (!config?.azurite) return undefined;
  return ensureAzurite(state, config.active === 'azurite', opts);
}

/** The active endpoint if storage is configured for the cluster, without starting anything. */
export async function blobEndpoint(clusterName: string): Promise<BlobEndpoint | undefined> {
  await requireState(clusterName);
  const config = await readConfig(BlobPaths.of(clusterName));
  const active = config?.active === 'azure' ? config.azure : config?.azurite;
  if (!config || !active) return undefined;
  return endpointOf(clusterName, config.active, active.url, undefined, config.active === 'azurite' ? config.azurite?.nodeUrl : undefined);
}

/**
 * A client with slurmkit's error mapping (bad names, missing containers, bad credentials).
 * Fails PRECONDITION at once if the service does not answer or refuses the credentials.
 */
export async function openBlobStore(endpoint: BlobEndpoint, opts: { verify?: boolean } = {}): Promise<BlobStore> {
  return (await client()).openStore(endpoint, opts);
}
