/**
 * Providers by kind. Code above providers/ asks the registry, never a provider module, so a
 * test can hand the lifecycle another implementation (the fault-injecting one, say) for a kind.
 */
import type { NodeProvider } from './types.js';
import { LocalProvider } from './local/provider.js';
import { DockerProvider } from './docker/provider.js';
import { SlurmkitError } from '../util/errors.js';
import { PROVIDER_TYPES, type ProviderType } from '../spec/schema.js';

export const PROVIDER_KINDS = PROVIDER_TYPES;
export type ProviderKind = ProviderType;

const factories: Record<ProviderKind, () => NodeProvider> = {
  local: () => new LocalProvider(),
  docker: () => new DockerProvider(),
};

const overrides = new Map<ProviderKind, NodeProvider>();

export function providerFor(kind: string): NodeProvider {
  if (!(PROVIDER_KINDS as readonly string[]).includes(kind)) {
    throw new SlurmkitError('UNSUPPORTED', `no provider "${kind}"`, { hint: `providers: ${PROVIDER_KINDS.join(', ')}` });
  }
  return overrides.get(kind as ProviderKind) ?? factories[kind as ProviderKind]();
}

/** Every provider, for collecting leftovers of any kind. */
export function allProviders(): NodeProvider[] {
  return PROVIDER_KINDS.map((k) => providerFor(k));
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
