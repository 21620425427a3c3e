/** The state store: validated reads, atomic writes, and updates from several processes at once. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ClusterPaths } from './paths.js';
import { createState, listClusterEntries, readState, STATE_VERSION, updateState, type ClusterState } from './state.js';
import { SlurmkitError } from '../util/errors.js';

function sample(name: string): ClusterState {
  const now = new Date().toISOString();
  return {
    version: STATE_VERSION,
    name,
    id: 'abc123',
    provider: 'local',
    createdAt: now,
    updatedAt: now,
    phase: 'running',
    network: { subnet: '10.213.9.0/24', prefixLength: 24, gateway: '10.213.9.1', addresses: { head: '10.213.9.2' }, bridge: 'skabc123br' },
    nodes: [{ name: 'head', role: 'head', index: 0, address: '10.213.9.2' }],
    timings: [],
  };
}

async function makeCluster(name: string): Promise<void> {
  await mkdir(ClusterPaths.of(name).root, { recursive: true });
  await createState(sample(name));
}

async function rejection(p: Promise<unknown>): Promise<SlurmkitError> {
  return p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => {
      assert.ok(e instanceof SlurmkitError, `not a SlurmkitError: ${String(e)}`);
      return e;
    },
  );
}

describe('state store', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp('/var/tmp/slurmkit-state-test-');
    process.env.SLURMKIT_HOME = home;
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  test('a state written is read back equal, through the schema', async () => {
    await makeCluster('s-ok');
    const s = await readState('s-ok');
    assert.equal(s?.id, 'abc123');
    assert.deepEqual(s?.nodes, sample('s-ok').nodes);
  });

  for (const [what, content, says] of [
    ['truncated to nothing', '', /is empty/],
    ['cut off half-way', '{"version": 1, "name": "s-bad", "id": "ab', /not valid JSON/],
    ['valid JSON of the wrong shape', JSON.stringify({ ...sample('s-bad'), phase: 'dancing', nodes: 'none' }), /does not match the state schema.*(phase|nodes)/],
    ['of another cluster', JSON.stringify(sample('someone-else')), /describes cluster "someone-else"/],
  ] as const) {
    test(`a state file ${what} is reported with its path and the fix, and listed as broken`, async () => {
      const name = 's-bad';
      await makeCluster(name);
      await writeFile(ClusterPaths.of(name).state, content);
      const err = await rejection(readState(name));
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, says);
      assert.ok(err.message.includes(ClusterPaths.of(name).state), err.message);
      assert.match(err.hint ?? '', /slurmkit down s-bad --force/);
      const entry = (await listClusterEntries()).find((e) => e.name === name);
      assert.ok(entry && !entry.state && entry.error.message === err.message, 'listed with its error');
      await rejection(updateState(name, 'abc123', () => undefined));
      assert.equal(await readFile(ClusterPaths.of(name).state, 'utf8'), content, 'a broken state is never overwritten by an update');
      await rm(ClusterPaths.of(name).root, { recursive: true });
    });
  }

  test('a state written by a newer slurmkit is refused, not half-read', async () => {
    await makeCluster('s-new');
    await writeFile(ClusterPaths.of('s-new').state, JSON.stringify({ ...sample('s-new'), version: STATE_VERSION + 1, extra: true }));
    assert.match((await rejection(readState('s-new'))).message, /newer slurmkit/);
  });

  test('a folder without a state file is listed as broken, not skipped', async () => {
    await mkdir(ClusterPaths.of('s-empty').root, { recursive: true });
    const entry = (await listClusterEntries()).find((e) => e.name === 's-empty');
    assert.ok(entry?.error, 'listed with an error');
    assert.match(entry.error.message, /missing/);
  });

  test('creating a cluster whose name is taken is a CONFLICT', async () => {
    await makeCluster('s-taken');
    assert.equal((await rejection(createState(sample('s-taken')))).code, 'CONFLICT');
  });

  test('an update of a replaced cluster (another id) is refused', async () => {
    await makeCluster('s-replaced');
    const err = await rejection(updateState('s-replaced', 'ffffff', (s) => void (s.phase = 'stopped')));
    assert.match(err.message, /replaced/);
    assert.equal((await readState('s-replaced'))?.phase, 'running');
  });

  test('an update that breaks the schema is refused and the file is kept as it was', async () => {
    await makeCluster('s-guard');
    const before_ = await readFile(ClusterPaths.of('s-guard').state, 'utf8');
    await assert.rejects(updateState('s-guard', 'abc123', (s) => void ((s as { phase: string }).phase = 'dancing')));
    assert.equal(await readFile(ClusterPaths.of('s-guard').state, 'utf8'), before_);
  });

  test('40 updates from 8 processes at once: none is lost, no temporary file is left', async () => {
    const name = 's-race';
    await makeCluster(name);
    const stateModule = fileURLToPath(new URL('./state.js', import.meta.url));
    const script = `
      const { updateState } = await import(${JSON.stringify(stateModule)});
      const me = process.argv[1];
      for (let i = 0; i < 5; i++) await updateState(${JSON.stringify(name)}, 'abc123', (s) => { s.timings.push({ phase: me + '-' + i, ms: i }); });
    `;
    const runs = Array.from({ length: 8 }, (_, p) =>
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, `p${p}`], { env: { ...process.env, SLURMKIT_HOME: home }, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', (code) => resolve(code ?? 1));
      }),
    );
    assert.deepEqual(await Promise.all(runs), Array(8).fill(0));
    const phases = (await readState(name))!.timings.map((t) => t.phase).sort();
    assert.equal(phases.length, 40, `lost updates: only ${phases.length} of 40 arrived`);
    assert.equal(new Set(phases).size, 40);
    const stray = (await readdir(ClusterPaths.of(name).root)).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(stray, []);
  });
});
