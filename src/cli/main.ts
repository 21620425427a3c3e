#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { writeFile, access } from 'node:fs/promises';
import { SlurmkitError, asSlurmkitError, exitCodeOf } from '../util/errors.js';
import { Progress, formatMs, setInterruptSignal } from '../util/progress.js';
import { up, stop, start, down, gc, jupyterAccess } from '../app/clusters.js';
import { headOf, labelOf, providerFor } from '../cluster/nodes.js';
import { listClusters, listNodes, showCluster, logSource, showLog, DAEMONS, type Daemon } from '../cluster/inspect.js';
import { requireState, type ClusterState } from '../cluster/state.js';
import { doctor } from '../cluster/doctor.js';
import { optionsOf } from '../cluster/placement.js';
import { asClusterUser } from '../app/users.js';
import { checkProvider, resolveClusterSpec } from '../app/specs.js';
// The spec modules (zod, yaml) load lazily: most commands never read a spec, and loading them costs ~200 ms.
const specModules = async () => ({ ...(await import('../spec/templates.js')), ...(await import('../spec/load.js')) });
import { print, renderTable, seconds } from './table.js';
import { registerBatchCommands } from './batch.js';
import { registerScaleCommands } from './scale.js';
import { registerImageCommands } from './image.js';
import { registerBlobCommands } from './blob.js';
import { registerServeCommands } from './serve.js';

/** `--provider`, checked before anything else is read. */
export const providerOption = (value: string | undefined): string | undefined => checkProvider(value);

/** Reads the spec from a template or a file, applying --name and --provider, and validates it all at once. */
async function loadConfig(opts: { template?: string; file?: string; name?: string; provider?: string }) {
  if (opts.template && opts.file) {
    throw new SlurmkitError('USAGE', 'give either --template or -f/--file, not both');
  }
  providerOption(opts.provider);
  const { readSpecText } = await import('../spec/load.js');
  const text = opts.file ? await readSpecText(opts.file) : undefined;
  return resolveClusterSpec({ template: opts.template, text, source: opts.file, name: opts.name, provider: opts.provider });
}

function requireNode(state: ClusterState, node: string): void {
  if (!state.nodes.some((n) => n.name === node)) {
    throw new SlurmkitError('NOT_FOUND', `cluster ${state.name} has no node "${node}"`, { hint: `nodes: ${state.nodes.map((n) => n.name).join(', ')}` });
  }
}

/** Who runs a command in a node: root in the caller's folder, or a cluster user in their home. */
function asUser(state: ClusterState, user: string | undefined) {
  return asClusterUser(state, user, providerFor(state).capabilities.sharesHost ? nodeCwd() : '/root');
}

/** Where a command should run inside a node: the caller's folder, unless it is one the node keeps private. */
function nodeCwd(): string {
  const cwd = process.cwd();
  return /^\/(tmp|run|proc|sys|dev)(\/|$)/.test(cwd) ? '/root' : cwd;
}

export function buildCli(): Command {
  const program = new Command('slurmkit')
    // Before any subcommand is added: subcommands copy this, so their usage errors reach reportError.
    .exitOverride()
    .description('Real Slurm clusters out of lightweight containers: up in seconds, down without a trace.')
    .version('0.1.0')
    .showSuggestionAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('up')
    .description('create a cluster and start it; returns when every node is idle')
    .option('-t, --template <name>', 'built-in template (see list-templates)')
    .option('-f, --file <spec.yaml>', 'cluster spec file')
    .option('-n, --name <name>', 'cluster name (overrides the spec)')
    .option('--provider <type>', 'where the nodes run: local or docker (overrides the spec)')
    .option('--timeout <seconds>', 'how long to wait for every node to be idle', '120')
    .option('--json', 'print the result as JSON')
    .action(async (opts) => {
      const readyTimeoutMs = seconds(opts.timeout, '--timeout') * 1000;
      const { config, text } = await loadConfig(opts);
      const progress = Progress.stderr();
      progress.info(`Creating cluster ${config.name}: 1 head + ${config.nodes.length} worker(s)${config.login ? ` + login node ${config.login.hostname}` : ''}`);
      const t0 = performance.now();
      const state = await up({ config, specText: text, progress, readyTimeoutMs });
      const total = Math.round(performance.now() - t0);
      const workers = state.nodes.filter((n) => n.role === 'worker').length;
      const login = state.nodes.find((n) => n.role === 'login');
      print(opts.json, { ...state, totalMs: total }, () =>
        [
          `Cluster ${state.name} is up in ${formatMs(total)}: ${workers} worker(s) idle, subnet ${state.network.subnet}.`,
          `  try:  slurmkit exec ${state.name} -- srun -N${Math.min(workers, 8)} hostname`,
          // The URL, not the node's address: on a swarm this machine reaches Jupyter where the port is published.
          ...(login?.jupyter ? [`  Jupyter on ${login.name}, each user's URL: slurmkit jupyter ${state.name} --user USER`] : []),
          `  stop: slurmkit down ${state.name}`,
        ].join('\n'),
      );
    });

  program
    .command('list')
    .description('list clusters')
    .option('--json', 'print as JSON')
    .action(async (opts) => {
      const clusters = await listClusters();
      const broken = clusters.filter((c) => c.error);
      print(opts.json, clusters, () =>
        clusters.length === 0
          ? 'No clusters. Create one with: slurmkit up --template lab'
          : [
              renderTable(
                ['NAME', 'PHASE', 'NODES', 'RUNNING', 'IDLE', 'SUBNET'],
                clusters.map((c) => (c.error ? [c.name, c.phase, '?', '?', '?', '?'] : [c.name, c.phase, String(c.nodes.total), String(c.nodes.running), String(c.nodes.idle), c.subnet])),
              ),
              ...broken.map((c) => `\n${c.name}: ${c.error}\n  fix: ${c.fix}`),
            ].join('\n'),
      );
    });

  program
    .command('show')
    .description('show one cluster')
    .argument('<name>')
    .option('--json', 'print as JSON')
    .action(async (name, opts) => {
      const c = await showCluster(name);
      print(opts.json, c, () =>
        [
          `name:     ${c.name} (id ${c.id})`,
          `provider: ${c.provider}`,
          `phase:    ${c.phase}`,
          `subnet:   ${c.subnet}`,
          `nodes:    ${c.nodes.total} (${c.nodes.running} running, ${c.nodes.idle} idle in Slurm)`,
          `folder:   ${c.folder}`,
          `created:  ${c.createdAt}`,
          ...(c.timings.length ? ['last command:', ...c.timings.map((t) => `  ${t.phase.padEnd(28)} ${formatMs(t.ms)}`)] : []),
          ...(c.login
            ? [
                `login:    ${c.login.node} ${c.login.address}` +
                  (c.login.jupyter.length
                    ? `, Jupyter for ${c.login.jupyter.map((j) => `${j.user} on port ${j.port}`).join(', ')}; each URL with its token: slurmkit jupyter ${c.name} --user USER`
                    : ''),
              ]
            : []),
          ...(c.agent
            ? [
                c.agent.running
                  ? `autoscale: agent running (pid ${c.agent.pid}), log ${c.agent.log}`
                  : `autoscale: agent NOT running${c.phase === 'running' ? ` — nodes are not made or removed; restart it with: slurmkit start ${c.name}` : ''} (log ${c.agent.log})`,
              ]
            : []),
          ...(c.scaleEvents.length
            ? [
                'autoscaling (last 10 events; times from the request):',
                ...c.scaleEvents.slice(-10).map(
                  (e) =>
                    `  ${e.requestedAt}  ${e.action} ${e.nodes}${e.jobs?.length ? ` for job ${e.jobs.join(',')}` : ''}: ` +
                    (e.error ? `failed: ${e.error}` : e.phases.map((p) => `${p.phase} ${formatMs(p.ms)}`).join(', ') || 'requested'),
                ),
              ]
            : []),
        ].join('\n'),
      );
    });

  program
    .command('jupyter')
    .description("print a user's Jupyter URL on the login node, with the user's token (login: {jupyter: true})")
    .argument('<name>')
    .requiredOption('--user <user>', 'the cluster user whose Jupyter server to open')
    .option('--json', 'print as JSON')
    .action(async (name, opts) => {
      const access = await jupyterAccess(await requireState(name), opts.user);
      print(opts.json, access, () => access.url);
    });

  program
    .command('list-nodes')
    .description("list a cluster's nodes")
    .argument('<name>')
    .option('--json', 'print as JSON')
    .action(async (name, opts) => {
      const nodes = await listNodes(name);
      const hosts = nodes.some((n) => n.host !== null);
      const reasons = nodes.some((n) => n.reason !== null);
      const power = nodes.some((n) => n.power !== null);
      print(opts.json, nodes, () =>
        renderTable(
          ['NODE', 'ROLE', ...(hosts ? ['HOST'] : []), 'ADDRESS', 'RUNNING', 'SLURM', ...(power ? ['POWER'] : []), 'PROCESSES', ...(reasons ? ['REASON'] : [])],
          nodes.map((n) => [
            n.name,
            n.role,
            ...(hosts ? [n.host ?? '-'] : []),
            n.address,
            n.running ? 'yes' : 'no',
            n.slurmState ?? '-',
            ...(power ? [n.power ?? '-'] : []),
            n.processes.join(',') || '-',
            ...(reasons ? [n.reason ?? '-'] : []),
          ]),
        ),
      );
    });

  program
    .command('exec')
    .description("run a command inside a node (default: the head) with Slurm's client environment")
    .argument('<name>')
    .argument('<command...>')
    .option('--node <node>', 'node to run in')
    .option('--user <user>', 'run as this cluster user (from the spec\'s users:), in their home')
    .usage('<name> [--node NODE] [--user USER] -- <command...>')
    .action(async (name, command: string[], opts) => {
      const state = await requireState(name);
      const node = opts.node ?? headOf(state).name;
      requireNode(state, node);
      const r = await providerFor(state).exec({ label: labelOf(state), node, command, stdio: 'inherit', ...asUser(state, opts.user) });
      process.exitCode = r.exitCode;
    });

  program
    .command('shell')
    .description('open an interactive shell inside a node (default: the head)')
    .argument('<name>')
    .option('--node <node>', 'node to open the shell in')
    .option('--user <user>', 'as this cluster user, in their home')
    .action(async (name, opts) => {
      const state = await requireState(name);
      const node = opts.node ?? headOf(state).name;
      requireNode(state, node);
      const who = asUser(state, opts.user);
      const r = await providerFor(state).exec({
        label: labelOf(state),
        node,
        command: ['bash', '--norc', '-i'],
        stdio: 'inherit',
        ...who,
        env: { ...who.env, PS1: `[${opts.user ?? 'root'}@${name}:${node} \\W]\\$ ` },
      });
      process.exitCode = r.exitCode;
    });

  program
    .command('cp')
    .description('copy files and folders between this machine and a node (NAME:[NODE:]PATH; the head by default), owner and mode kept')
    .argument('<src>', 'a path here, or NAME:[NODE:]PATH')
    .argument('<dest>', 'a path here, or NAME:[NODE:]PATH (into it when it is a folder)')
    .option('--user <user>', 'copy as this cluster user (from the spec\'s users:): their permissions apply, their files')
    .option('--json', 'print the result as JSON')
    .action(async (src: string, dest: string, opts) => {
      const { copy } = await import('../app/copy.js');
      const r = await copy(src, dest, opts.user === undefined ? {} : { user: opts.user });
      print(opts.json, r, () => `Copied ${r.files} file(s), ${r.bytes} bytes from ${r.from} to ${r.to} in ${formatMs(r.ms)}.`);
    });

  program
    .command('stop')
    .description('stop every daemon and node, keeping all state (queued jobs stay queued)')
    .argument('<name>')
    .option('--json', 'print the result as JSON')
    .action(async (name, opts) => {
      const progress = Progress.stderr();
      const state = await stop(name, progress);
      print(opts.json, state, () => `Cluster ${name} is stopped. Start it again with: slurmkit start ${name}`);
    });

  program
    .command('start')
    .description('start a stopped cluster, or restart the nodes and daemons of a running one that died')
    .argument('<name>')
    .option('--timeout <seconds>', 'how long to wait for every node to be idle', '120')
    .option('--json', 'print the result as JSON')
    .action(async (name, opts) => {
      const progress = Progress.stderr();
      const state = await start(name, progress, seconds(opts.timeout, '--timeout') * 1000);
      print(opts.json, state, () => `Cluster ${name} is running: ${state.nodes.length - 1} worker(s) answer Slurm.`);
    });

  program
    .command('down')
    .description('destroy a cluster and everything it created (idempotent)')
    .argument('<name>')
    .option('--force', 'forget the cluster even if its state is unreadable or some resource cannot be removed')
    .option('--json', 'print the result as JSON')
    .action(async (name, opts) => {
      const progress = Progress.stderr();
      const r = await down(name, { force: opts.force, progress });
      print(opts.json, r, () => (r.existed ? `Cluster ${name} is gone.` : `No cluster named ${name}; nothing to remove.`));
    });

  program
    .command('logs')
    .description("show or follow a daemon's log")
    .argument('<name>')
    .option('--node <node>', 'node (default: the head)')
    .addOption(new Option('--daemon <daemon>', 'which log').choices([...DAEMONS]))
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --lines <n>', 'only the last n lines')
    .action(async (name, opts) => {
      const source = await logSource(name, opts.node, opts.daemon as Daemon | undefined);
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      await showLog(source, process.stdout, { follow: opts.follow, signal: ac.signal, lines: opts.lines ? Number(opts.lines) : undefined });
    });

  program
    .command('doctor')
    .description('check that this machine can run clusters (local, docker with --provider docker, or the hosts of a spec with -f), with a fix for each problem')
    .option('--provider <type>', 'the provider to check: local or docker', 'local')
    .option('-f, --file <spec>', "check the provider of this spec (a swarm's hosts)")
    .option('--json', 'print as JSON')
    .action(async (opts) => {
      let kind = providerOption(opts.provider);
      let options: ReturnType<typeof optionsOf>;
      if (opts.file) {
        const { config } = await loadConfig({ file: opts.file });
        kind = config.provider.type;
        options = optionsOf(config.provider);
      } else if (kind === 'swarm') {
        throw new SlurmkitError('USAGE', '--provider swarm needs the hosts of a spec', { hint: 'run slurmkit doctor -f SPEC with a spec whose provider lists the hosts' });
      }
      const checks = await doctor(kind, options);
      print(opts.json, checks, () =>
        checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}${c.ok ? '' : `\n    fix: ${c.fix}`}`).join('\n'),
      );
      if (checks.some((c) => !c.ok)) process.exitCode = 5;
    });

  program
    .command('gc')
    .description('remove leftovers (processes, bridges, firewall rules) of clusters that no longer exist')
    .option('--json', 'print as JSON')
    .action(async (opts) => {
      const report = await gc();
      print(opts.json, report, () =>
        report.found.length === 0
          ? 'Nothing to collect.'
          : [...report.removed.map((r) => `removed ${r}`), ...report.failed.map((f) => `FAILED ${f.resource}: ${f.error}\n    retry: ${f.retry}`)].join('\n'),
      );
      if (report.failed.length > 0) process.exitCode = 8;
    });

  program
    .command('list-templates')
    .description('list built-in cluster templates')
    .option('--json', 'print as JSON')
    .action(async (opts) => {
      const templates = await (await specModules()).listTemplates();
      print(opts.json, templates, () => renderTable(['TEMPLATE', 'DESCRIPTION'], templates.map((t) => [t.name, t.description])));
    });

  program
    .command('init')
    .description('write a commented cluster spec to start from')
    .option('-t, --template <name>', 'template to start from', 'lab')
    .option('-o, --output <file>', 'file to write (default: print to stdout)')
    .option('--force', 'overwrite an existing file')
    .action(async (opts) => {
      const text = await (await specModules()).templateText(opts.template);
      if (!opts.output) {
        process.stdout.write(text);
        return;
      }
      if (!opts.force && (await access(opts.output).then(() => true, () => false))) {
        throw new SlurmkitError('CONFLICT', `${opts.output} already exists`, { hint: 'pick another file with -o, or pass --force to overwrite it' });
      }
      await writeFile(opts.output, text);
      process.stderr.write(`Wrote ${opts.output}. Edit it, then: slurmkit up -f ${opts.output}\n`);
    });

  program
    .command('demo')
    .description('the classic exercise: 49 colour photos in blob container input become grayscale in output, over the 8 workers of lab')
    .option('--keep', 'leave the cluster running afterwards')
    .option('--provider <type>', 'where a new lab runs: local (default) or docker')
    .option('-f, --file <spec>', "where a new lab runs: this spec's provider (a swarm's hosts, say)")
    .option('--out <dir>', 'where to put the grayscale results', 'slurmkit-demo-output')
    .option('--force', 'convert again even if the outputs are up to date')
    .option('--json', 'print the result as JSON')
    .action(async (opts) => {
      const { runDemo } = await import('./demo.js');
      const provider = providerOption(opts.provider);
      if (provider && opts.file) throw new SlurmkitError('USAGE', '--provider and -f both say where the lab runs', { hint: 'give one of them' });
      await runDemo({ keep: Boolean(opts.keep), out: opts.out, force: Boolean(opts.force), json: Boolean(opts.json), ...(provider ? { provider } : {}), ...(opts.file ? { file: String(opts.file) } : {}) });
    });

  program
    .command('rest')
    .description("call the cluster's Slurm REST API (needs rest: true), e.g. slurmkit rest lab GET /nodes")
    .argument('<name>')
    .argument('<method>', 'GET, POST or DELETE')
    .argument('<path>', 'e.g. /nodes, /jobs, /job/42, or a full /slurm/... or /slurmdb/... path')
    .option('--user <user>', 'act as this user (a token is made for them)', 'root')
    .option('--data <json>', 'request body (JSON)')
    .action(async (name, method: string, path: string, opts) => {
      const { restRequest } = await import('../cluster/rest.js');
      let body: unknown;
      if (opts.data !== undefined) {
        try {
          body = JSON.parse(opts.data);
        } catch (err) {
          throw new SlurmkitError('USAGE', `--data is not valid JSON: ${(err as Error).message}`, { hint: `e.g. --data '{"job": {...}}'` });
        }
      }
      const r = await restRequest(name, method.toUpperCase(), path, { user: opts.user, body });
      process.stdout.write(`${typeof r.body === 'string' ? r.body : JSON.stringify(r.body, null, 2)}\n`);
      if (r.status >= 400) process.exitCode = 6;
    });

  program
    .command('bench')
    .description('benchmark: cluster start/stop vs a plain shell script, the blob pipeline vs one process, accounting; prints JSON (takes minutes)')
    .action(async () => {
      const { spawn } = await import('node:child_process');
      const { fileURLToPath } = await import('node:url');
      const script = fileURLToPath(new URL('../bench/main.js', import.meta.url));
      await new Promise<void>((resolve) => {
        spawn(process.execPath, [script], { stdio: 'inherit' }).on('exit', (code) => {
          process.exitCode = code ?? 1;
          resolve();
        });
      });
    });

  registerBlobCommands(program);
  registerServeCommands(program);
  registerImageCommands(program);
  registerBatchCommands(program);
  registerScaleCommands(program);

  return program;
}


export function reportError(err: unknown, json: boolean): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  const e = asSlurmkitError(err);
  if (json) {
    process.stdout.write(`${JSON.stringify(e.toJSON(), null, 2)}\n`);
  } else {
    process.stderr.write(`error: ${e.message}\n`);
    for (const d of e.details) process.stderr.write(`  - ${d}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
  }
  return exitCodeOf(e);
}

/**
 * The first Ctrl-C or SIGTERM lets the running phase finish, then the command undoes what it
 * made (as on any failure) and exits 130; a second one exits at once.
 */
function handleInterrupts(): void {
  const ac = new AbortController();
  setInterruptSignal(ac.signal);
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
    process.stderr.write(`\n${sig}: stopping after the current step and cleaning up (again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed pipe (e.g. `slurmkit up | head`) must not kill the command half-way.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

async function main(): Promise<void> {
  handleInterrupts();
  const program = buildCli();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err, process.argv.includes('--json'));
  }
  // Done: a request still waiting on an engine that never answers (reported above) must not
  // keep the command alive. Exit once what was written has reached its pipe.
  await new Promise<void>((resolve) => process.stdout.write('', () => process.stderr.write('', () => resolve())));
  process.exit();
}

await main();
