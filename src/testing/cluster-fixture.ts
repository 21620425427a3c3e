/** A real cluster for the tests of one describe block. */
import { after, before } from 'node:test';
import { parseSpec } from '../spec/load.js';
import type { ClusterConfig } from '../spec/types.js';
import { up } from '../cluster/lifecycle.js';
import type { ClusterState } from '../cluster/state.js';
import { cleanupHome, useTempHome } from './harness.js';

/**
 * Called in a describe block: makes a cluster from `spec` (YAML text, or a function giving the
 * config and its text) in a private SLURMKIT_HOME before the block's tests, hands it to `onUp`,
 * and removes it with the home after them, also when they fail.
 */
export function withCluster(spec: string | (() => Promise<{ config: ClusterConfig; specText: string }>), onUp: (state: ClusterState, home: string) => void): void {
  let home: string | undefined;
  before(async () => {
    home = await useTempHome();
    const made = typeof spec === 'string' ? { config: parseSpec(spec, 'test'), specText: spec } : await spec();
    onUp(await up({ ...made, agent: false }), home);
  });
  after(async () => {
    if (home) await cleanupHome(home);
  });
}
