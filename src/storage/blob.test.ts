/**
 * Blob storage on a real cluster: a real Azurite inside the head node of one `minimal`
 * cluster, used through the library and through the CLI as a user runs it. Needs root and
 * the Debian packages the README installs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, start, stop, up } from '../app/clusters.js';
import { headOf, labelOf, providerFor } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';
import { ClusterPaths } from '../cluster/paths.js';
import { cleanupHome, leftoversOf, shOk, useTempHome } from '../testing/harness.js';
import { SlurmkitError } from '../util/errors.js';
import { azuriteEntry } from './azurite.js';
import { isAbort } from './errors.js';
import { BlobPaths, ensureBlobStorage, openBlobStore, resumeBlobStorage, type BlobStore } from './blob.js';
import { getToDir } from './transfer.js';

const NAME = 'tblob';
const DIST = fileURLToPath(new URL('..', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The real CLI once main.ts registers `blob`; until then, a tiny entry with the same error reporting. */
async function cliEntry(home: string): Promise<string> {
  const main = join(DIST, 'cli', 'main.js');
  const probe = await runNode([main, 'blob', '--help'], {});
  if (probe.code === 0 && probe.stdout.includes('mk <container>')) return main;
  const entry = join(home, 'blob-cli.mjs');
  const commander = pathToFileURL(createRequire(import.meta.url).resolve('commander')).href;
  await writeFile(
    entry,
    [
      `import { Command, CommanderError } from ${JSON.stringify(commander)};`,
      `import { registerBlobCommands } from ${JSON.stringify(pathToFileURL(join(DIST, 'cli', 'blob.js')).href)};`,
      `import { SlurmkitError, exitCodeOf } from ${JSON.stringify(pathToFileURL(join(DIST, 'util', 'errors.js')).href)};`,
      "const program = new Command('slurmkit').exitOverride().configureOutput({ outputError: (s, w) => w(s) });",
      'registerBlobCommands(program);',
      'try { await program.parseAsync(process.argv); } catch (err) {',
      '  if (err instanceof CommanderError) { process.exitCode = err.exitCode === 0 ? 0 : 2; }',
      '  else {',
      "    const e = err instanceof SlurmkitError ? err : new SlurmkitError('INTERNAL', String(err?.stack ?? err));",
      '    process.stderr.write(`error: ${e.message}\\n`);',
      '    for (const d of e.details) process.stderr.write(`  - ${d}\\n`);',
      '    if (e.hint) process.stderr.write(`hint: ${e.hint}\\n`);',
      '    process.exitCode = exitCodeOf(e);',
      '  }',
      '}',
    ].join('\n'),
  );
  return entry;
}

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const t0 = Date.now();
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

async function upMinimal(name: string, storage?: Record<string, unknown>): Promise<ClusterState> {
  const text = await templateText('minimal');
  const raw = applyOverrides(parseYaml(text, 'minimal'), { name }) as Record<string, unknown>;
  if (storage) raw.storage = storage;
  return up({ config: resolveSpec(raw, 'template minimal'), specText: text, readyTimeoutMs: 60_000 });
}

/** Host pids of this cluster's Azurite, found by what they run, not by label. */
async function azuritePids(name: string): Promise<number[]> {
  const data = BlobPaths.of(name).data;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const argv = cmd.split('\0');
    if (argv.includes(azuriteEntry()) && argv.includes(data)) pids.push(Number(entry));
  }
  return pids;
}

async function allCommandLines(): Promise<string> {
  const out: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (/^\d+$/.test(entry)) out.push(await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => ''));
  }
  return out.join('\n');
}

const isCode = (code: string) => (e: unknown) => e instanceof SlurmkitError && e.code === code;

describe('blob storage on a real cluster', () => {
  let home: string;
  let state: ClusterState;
  let cliMain: string;
  /** A client of the cluster's Azurite, opened by each test that needs one. */
  const storeOf = async (): Promise<BlobStore> => openBlobStore(await ensureBlobStorage(NAME));
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runNode([cliMain, 'blob', NAME, ...args], { SLURMKIT_HOME: home, AZURE_STORAGE_CONNECTION_STRING: undefined, ...env });

  before(async () => {
    home = await useTempHome();
    delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    state = await upMinimal(NAME);
    cliMain = await cliEntry(home);
  });

  after(async () => {
    await cleanupHome(home);
  });

  test('up launches Azurite inside the head node; ensureBlobStorage waits for that one', async () => {
    const launched = await azuritePids(NAME);
    assert.equal(launched.length, 1, 'up started one Azurite');
    const endpoint = await ensureBlobStorage(NAME);
    assert.deepEqual(await azuritePids(NAME), launched, 'the first command used the Azurite up had launched');
    assert.equal(endpoint.kind, 'azurite');
    assert.match(endpoint.url, new RegExp(`^http://${headOf(state).address.replace(/\./g, '\\.')}:10000/sk[0-9a-f]+$`));
    const pids = await azuritePids(NAME);
    assert.equal(pids.length, 1, 'one Azurite');
    // In the head's network namespace: it dies with the node and binds only the head's addresses.
    const head = (await providerFor(state).list(labelOf(state))).find((n) => n.hostname === headOf(state).name)!;
    assert.equal(await readlink(`/proc/${pids[0]}/ns/net`), await readlink(`/proc/${head.pid}/ns/net`));
    assert.notEqual(await readlink(`/proc/${pids[0]}/ns/net`), await readlink('/proc/self/ns/net'));
    assert.match(await shOk(state, 'ss -ltnH'), /0\.0\.0\.0:10000/);

    const again = await ensureBlobStorage(NAME);
    assert.equal(again.url, endpoint.url);
    assert.deepEqual(await azuritePids(NAME), pids, 'a second call starts nothing');
  });

  test('the account key is owner-only and on no command line', async () => {
    const paths = BlobPaths.of(NAME);
    assert.equal((await stat(paths.secrets)).mode & 0o777, 0o700);
    assert.equal((await stat(paths.account)).mode & 0o777, 0o600);
    assert.equal((await stat(paths.connectionString)).mode & 0o777, 0o600);
    const key = (await readFile(paths.account, 'utf8')).split(':')[1]!.trim();
    assert.ok(key.length >= 80);
    assert.ok((await readFile(paths.connectionString, 'utf8')).includes(key));
    assert.equal((await allCommandLines()).includes(key), false, 'key in some /proc/*/cmdline');
    assert.equal((await readFile(paths.log, 'utf8')).includes(key), false, 'key in azurite.log');
  });

  test('CLI: mk, ls, put a folder, get it back byte for byte, rm', async () => {
    const src = join(home, 'src');
    await mkdir(join(src, 'sub', 'deep'), { recursive: true });
    const files: Record<string, Buffer> = {
      'a.txt': Buffer.from('hello\n'),
      'sub/big.bin': randomBytes(5 * 1024 * 1024 + 123),
      'sub/deep/empty': Buffer.alloc(0),
      'sub/deep/name with spaces.dat': randomBytes(1000),
    };
    for (const [name, data] of Object.entries(files)) await writeFile(join(src, name), data);
    const store = await storeOf();

    let r = await cli(['mk', 'roundtrip', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { container: 'roundtrip', created: true });
    r = await cli(['mk', 'roundtrip']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /already exists/);

    r = await cli(['put', 'roundtrip', src, '--prefix', 'run1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const put = JSON.parse(r.stdout) as { files: number; bytes: number };
    assert.equal(put.files, 4);
    assert.equal(put.bytes, Object.values(files).reduce((n, b) => n + b.length, 0));
    r = await cli(['put', 'roundtrip', join(src, 'a.txt')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Uploaded 1 file\(s\)/);

    r = await cli(['ls', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { name: string }[]).some((c) => c.name === 'roundtrip'));
    r = await cli(['ls', 'roundtrip', '--prefix', 'run1/', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse(r.stdout) as { name: string; size: number; etag: string; lastModified: string }[];
    assert.deepEqual(listed.map((b) => b.name).sort(), Object.keys(files).map((f) => `run1/${f}`).sort());
    for (const b of listed) {
      assert.equal(b.size, files[b.name.slice('run1/'.length)]!.length);
      assert.ok(b.etag && b.lastModified);
    }

    const out = join(home, 'out');
    r = await cli(['get', 'roundtrip', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { files: number }).files, 5);
    for (const [name, data] of Object.entries(files)) assert.ok((await readFile(join(out, 'run1', name))).equals(data), name);
    assert.ok((await readFile(join(out, 'a.txt'))).equals(files['a.txt']!));

    const one = join(home, 'one');
    r = await cli(['get', 'roundtrip', 'run1/sub/big.bin', '-o', one]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readFile(join(one, 'run1', 'sub', 'big.bin'))).equals(files['sub/big.bin']!));
    assert.deepEqual(await readdir(join(one, 'run1', 'sub')), ['big.bin'], 'no temporary files left');

    r = await cli(['rm', 'roundtrip', 'a.txt']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await store.exists('roundtrip', 'a.txt'), false);
    r = await cli(['rm', 'roundtrip', 'a.txt']);
    assert.equal(r.code, 3, 'removing a missing blob is NOT_FOUND');
    r = await cli(['rm', 'roundtrip', 'a.txt', '--force']);
    assert.equal(r.code, 0, r.stderr);
  });

  test('get never leaves a partial file: an interrupted download keeps the old file and no temporary one', async () => {
    const store = await storeOf();
    await store.mk('partial');
    const big = randomBytes(32 * 1024 * 1024);
    await store.putData('partial', 'big.bin', big);
    const dir = join(home, 'partial');
    await mkdir(dir, { recursive: true });
    const dest = join(dir, 'big.bin');
    await writeFile(dest, 'old content');

    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      store.getToFile('partial', 'big.bin', dest, {
        signal: ac.signal,
        onProgress: (n) => {
          seen = n;
          if (n > 0) ac.abort();
        },
      }),
      isAbort,
    );
    assert.ok(seen > 0 && seen < big.length, `aborted part-way (${seen} bytes)`);
    assert.equal(await readFile(dest, 'utf8'), 'old content');
    assert.deepEqual(await readdir(dir), ['big.bin']);

    // A whole-container download aborted part-way leaves no file at all.
    const fresh = join(home, 'partial-dir');
    const ac2 = new AbortController();
    await assert.rejects(getToDir(store, 'partial', fresh, { signal: ac2.signal, onProgress: (p) => p.bytes > 0 && ac2.abort() }), isAbort);
    assert.deepEqual(await readdir(fresh), []);

    // A missing blob creates nothing either.
    await assert.rejects(store.getToFile('partial', 'nope.bin', join(dir, 'nope.bin')), isCode('NOT_FOUND'));
    assert.deepEqual(await readdir(dir), ['big.bin']);

    await store.getToFile('partial', 'big.bin', dest);
    assert.ok((await readFile(dest)).equals(big));
    assert.deepEqual(await readdir(dir), ['big.bin']);
  });

  test('a wrong container name exits 2 naming the argument, before any request', async () => {
    const store = await storeOf();
    const before_ = (await store.listContainers()).map((c) => c.name);
    for (const args of [['mk', 'Bad_Name'], ['ls', 'Bad_Name'], ['put', 'Bad_Name', fileURLToPath(import.meta.url)], ['get', 'Bad_Name', '-o', join(home, 'x')], ['rm', 'Bad_Name']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /CONTAINER "Bad_Name"/);
      assert.match(r.stderr, /3-63 characters: lowercase letters, digits and single hyphens/);
    }
    assert.deepEqual((await store.listContainers()).map((c) => c.name), before_, 'nothing created');
    await assert.rejects(store.mk('Bad_Name'), isCode('USAGE'));
    await assert.rejects(store.putData('a', 'x', 'y'), isCode('USAGE'));
  });

  test('a missing container exits 3 with the command that creates it', async () => {
    for (const args of [['ls', 'nosuch'], ['put', 'nosuch', fileURLToPath(import.meta.url)], ['get', 'nosuch', '-o', join(home, 'never')], ['rm', 'nosuch']]) {
      const r = await cli(args);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /container "nosuch" does not exist/);
      assert.match(r.stderr, new RegExp(`hint: create it: slurmkit blob ${NAME} mk nosuch`));
    }
    await assert.rejects(stat(join(home, 'never')), 'get into a missing container creates no folder');
    const store = await storeOf();
    assert.equal(await store.exists('nosuch'), false, 'no command created the container');
    await assert.rejects(store.putData('nosuch', 'x', 'y'), isCode('NOT_FOUND'));
  });

  test('a bad AZURE_STORAGE_CONNECTION_STRING fails clearly, never echoes it, and changes nothing', async () => {
    const paths = BlobPaths.of(NAME);
    const before_ = { cs: await readFile(paths.connectionString, 'utf8'), config: await readFile(paths.config, 'utf8') };

    const garbage = 'garbage-Zq9vX3-not-a-connection-string';
    let r = await cli(['ls'], { AZURE_STORAGE_CONNECTION_STRING: garbage });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /AZURE_STORAGE_CONNECTION_STRING is not a valid Azure Storage connection string/);
    assert.ok(!(r.stdout + r.stderr).includes(garbage));

    // Well formed, but the key is wrong: the cluster's Azurite refuses it.
    const account = (await readFile(paths.account, 'utf8')).split(':')[0]!;
    const wrongKey = randomBytes(64).toString('base64');
    const url = (await ensureBlobStorage(NAME)).url;
    r = await cli(['ls'], { AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${wrongKey};BlobEndpoint=${url};` });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /refused to list containers \(403/);
    assert.ok(!(r.stdout + r.stderr).includes(wrongKey));

    // Nothing listens there: fails in seconds, not after minutes of retries.
    r = await cli(['ls'], { AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=nobody;AccountKey=${wrongKey};BlobEndpoint=http://127.0.0.1:1/nobody;` });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /cannot reach blob storage at http:\/\/127\.0\.0\.1:1\/nobody/);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);

    assert.deepEqual({ cs: await readFile(paths.connectionString, 'utf8'), config: await readFile(paths.config, 'utf8') }, before_);
  });

  test("a job on a worker reaches the storage with the jobs' connection string file: a signature, not the account key", async () => {
    const store = await storeOf();
    await store.mk('jobs');
    const { connectionStringFile } = await ensureBlobStorage(NAME);
    const jobs = await readFile(connectionStringFile, 'utf8');
    assert.match(jobs, /SharedAccessSignature=.*sig=/);
    assert.doesNotMatch(jobs, /AccountKey/);
    const daysLeft = (Date.parse(new URLSearchParams(/SharedAccessSignature=(.*)$/.exec(jobs.trim())![1]).get('se')!) - Date.now()) / 86_400_000;
    assert.ok(daysLeft > 29 && daysLeft <= 30, `the signature ends in ${daysLeft.toFixed(1)} days`);
    assert.equal((await stat(connectionStringFile)).mode & 0o777, 0o600);
    const sdk = createRequire(import.meta.url).resolve('@azure/storage-blob');
    const script = [
      `const { BlobServiceClient } = require(${JSON.stringify(sdk)});`,
      "const cs = require('fs').readFileSync(process.argv[2], 'utf8');",
      "BlobServiceClient.fromConnectionString(cs).getContainerClient('jobs').getBlockBlobClient('from-' + require('os').hostname()).upload('hi', 2)",
      '  .then(() => console.log("ok"), (e) => { console.error(e.message); process.exit(1); });',
    ].join('\n');
    const scriptFile = join(home, 'job.cjs');
    await writeFile(scriptFile, script);
    assert.equal((await shOk(state, `srun -w c2 ${process.execPath} ${scriptFile} ${connectionStringFile}`)).trim(), 'ok');
    assert.equal((await store.getData('jobs', 'from-c2')).toString(), 'hi');
  });

  test('blob storage survives stop and start', async () => {
    const store = await storeOf();
    await store.mk('keep');
    await store.putData('keep', 'dir/kept.txt', 'still here', { metadata: { origin: 'test' } });
    await stop(NAME);
    assert.deepEqual(await azuritePids(NAME), [], 'Azurite stops with the head');
    await assert.rejects(ensureBlobStorage(NAME), (e: unknown) => isCode('CONFLICT')(e) && (e as SlurmkitError).hint === `slurmkit start ${NAME}`);
    const r = await cli(['ls']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`hint: slurmkit start ${NAME}`));

    await start(NAME);
    const endpoint = await resumeBlobStorage(NAME);
    assert.equal(endpoint?.kind, 'azurite');
    assert.equal((await azuritePids(NAME)).length, 1);
    await resumeBlobStorage(NAME);
    assert.equal((await azuritePids(NAME)).length, 1, 'resume is idempotent');
    const reopened = await openBlobStore(endpoint!);
    assert.equal((await reopened.getData('keep', 'dir/kept.txt')).toString(), 'still here');
    const [kept] = await reopened.listBlobs('keep');
    assert.deepEqual(kept?.metadata, { origin: 'test' });
  });

  test('storage.blob: none runs no Azurite; blob commands say so, and a connection string still works', async () => {
    const other = await upMinimal(`${NAME}-none`, { blob: 'none' });
    try {
      assert.deepEqual(await azuritePids(other.name), []);
      await assert.rejects(ensureBlobStorage(other.name), (e: unknown) => {
        assert.ok(isCode('CONFLICT')(e), String(e));
        assert.match((e as Error).message, /storage\.blob: none/);
        assert.match((e as SlurmkitError).hint ?? '', /AZURE_STORAGE_CONNECTION_STRING/);
        return true;
      });
      // The first cluster's Azurite, as if it were a real account, with a container of this test's.
      await (await storeOf()).mk('seen-from-none');
      const cs = await readFile(BlobPaths.of(NAME).connectionString, 'utf8');
      const r = await runNode([cliMain, 'blob', other.name, 'ls'], { SLURMKIT_HOME: home, AZURE_STORAGE_CONNECTION_STRING: cs.trim() });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\bseen-from-none\b/, 'lists the other account\'s containers');
      assert.deepEqual(await azuritePids(other.name), []);
    } finally {
      await down(other.name);
    }
  });

  test('storage.blob: azure with connectionStringFile uses that account; a file others can read is refused before anything is made', async () => {
    const file = join(home, 'account.conn');
    await writeFile(file, `${(await readFile(BlobPaths.of(NAME).connectionString, 'utf8')).trim()}\n`, { mode: 0o644 });
    await chmod(file, 0o644);
    const name = `${NAME}-az`;
    await (await storeOf()).mk('seen-from-azure');
    await assert.rejects(upMinimal(name, { blob: 'azure', connectionStringFile: file }), (e: unknown) => {
      assert.ok(isCode('SPEC_INVALID')(e), String(e));
      assert.match((e as Error).message, /storage\.connectionStringFile .* can be read by others/);
      assert.equal((e as SlurmkitError).hint, `chmod 600 ${file}`);
      return true;
    });
    assert.equal(existsSync(ClusterPaths.of(name).root), false, 'nothing was made');
    await chmod(file, 0o600);
    const other = await upMinimal(name, { blob: 'azure', connectionStringFile: file });
    try {
      assert.deepEqual(await azuritePids(name), [], 'no Azurite of its own');
      const endpoint = await ensureBlobStorage(name);
      assert.equal(endpoint.kind, 'azure');
      const r = await runNode([cliMain, 'blob', name, 'ls'], { SLURMKIT_HOME: home, AZURE_STORAGE_CONNECTION_STRING: undefined });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\bseen-from-azure\b/, 'lists the account\'s containers');
      assert.equal((await stat(BlobPaths.of(name).connectionString)).mode & 0o777, 0o600, 'jobs get it through an owner-only file');
    } finally {
      await down(other.name);
    }
  });

  test('down leaves no Azurite process and nothing labeled', async () => {
    // A cluster of its own, so the shared one stays up for any test after this.
    const own = await upMinimal(`${NAME}-down`);
    assert.equal((await azuritePids(own.name)).length, 1);
    await down(own.name);
    assert.deepEqual(await azuritePids(own.name), []);
    assert.deepEqual(await leftoversOf(own.id), []);
  });
});
