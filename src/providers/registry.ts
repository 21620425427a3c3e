/**
 * Providers by kind. Code above providers/ asks the registry, never a provider module, so a
 * test can hand the lifecycle another implementation (the fault-injecting one, say) for a kind.
 */
import type { NodeProvider, ProviderHost, ProviderOptions } from './types.js';
import { LocalProvider } from './local/provider.js';
import { DockerProvider } from './docker/provider.js';
import { SwarmProvider } from './swarm/provider.js';
import { SlurmkitError } from '../util/errors.js';
import { PROVIDER_TYPES, type ProviderType } from '../spec/schema.js';

export const PROVIDER_KINDS = PROVIDER_TYPES;
export type ProviderKind = ProviderType;

const factories: Record<ProviderKind, (options: ProviderOptions) => NodeProvider> = {
  local: () => new LocalProvider(),
  docker: () => new DockerProvider(),
  swarm: (options) => new SwarmProvider(options.hosts ?? [], options.registry),
};

const overrides = new Map<ProviderKind, NodeProvider>();
/** Providers made with options, one per set of options: a swarm's engines and image are found once per process. */
const made = new Map<string, NodeProvider>();

/** The provider of a kind, made with what the cluster's spec gives it (the swarm's hosts). */
export function providerFor(kind: string, options: ProviderOptions = {}): NodeProvider {
  if (!(PROVIDER_KINDS as readonly string[]).includes(kind)) {
    throw new SlurmkitError('UNSUPPORTED', `no provider "${kind}"`, { hint: `providers: ${PROVIDER_KINDS.join(', ')}` });
  }
  const override = overrides.get(kind as ProviderKind);
  if (override) return override;
  if (!options.hosts) return factories[kind as ProviderKind](options);
  const key = JSON.stringify([kind, options]);
  let provider = made.get(key);
  if (!provider) made.set(key, (provider = factories[kind as ProviderKind](options)));
  return provider;
}

/**
 * Every provider, for collecting leftovers of any kind; a swarm provider over `swarmHosts` (the
 * hosts clusters of this home used), none without them.
 */
export function allProviders(swarmHosts: ProviderHost[] = []): NodeProvider[] {
  return PROVIDER_KINDS.flatMap((k) => (k !== 'swarm' ? [providerFor(k)] : swarmHosts.length > 0 ? [providerFor(k, { hosts: swarmHosts })] : []));
}

/** Makes providerFor(kind) return `provider` until restore() is called (for tests). */
export function overrideProvider(kind: ProviderKind, provider: NodeProvider): { restore(): void } {
  const before = overrides.get(kind);
  overrides.set(kind, provider);
  const restore = () => {
    if (before) overrides.set(kind, before);
    else overrides.delete(kind);
  };
  return { restore };
}
