/**
 * Nodes as containers on the Docker engines of several hosts, joined into one Docker Swarm: the
 * cluster network is an attachable overlay network (VXLAN between the hosts), each node a
 * container on the host the cluster's placement chose, with the address the cluster planned.
 * Swarm is the distributed engine here; slurmkit makes none of its own. What the docker
 * provider does on one engine (image, volumes, files, exec, labels) it does here on each.
 *
 * Why containers and not Swarm services: a service task cannot be given a fixed address (the
 * engine assigns it), and Slurm's nodes are found by the addresses the cluster writes into every
 * node's /etc/hosts before slurmctld starts, so that no name lookup ever leaves the cluster (an
 * unknown name cost 20 s here). Containers on an attachable overlay network keep that: the same
 * layout as on one engine, and nodes across hosts reach each other as on one.
 */
import type Docker from 'dockerode';
import type { Check, ClusterLabel, NetworkRequest, PreflightRequest, ProviderCapabilities, ProviderHost } from '../types.js';
import { SlurmkitError } from '../../util/errors.js';
import { sleep } from '../../util/run.js';
import { DockerProvider, containerName, type EngineRef } from '../docker/provider.js';
import { LABEL, answerWithin, engineAt, engineMessage, reachable } from '../docker/engine.js';
import { defaultRecipe, distributeImage, distributeThroughRegistry, ensureImage, ensureRuntime, imageTag, runtimeHash, type EnsuredImage } from '../docker/image.js';


interface SwarmInfo {
  LocalNodeState?: string;
  NodeID?: string;
  NodeAddr?: string;
  ControlAvailable?: boolean;
  Error?: string;
  RemoteManagers?: { NodeID: string; Addr: string }[] | null;
}

/** How long nodes wait for a host the swarm's manager does not count as ready yet. */
const READY_WAIT_MS = 60_000;

export class SwarmProvider extends DockerProvider {
  override readonly kind = 'swarm';
  // Each host's engine keeps its own volumes: /home and /shared come from the head's GlusterFS server.
  override readonly capabilities: ProviderCapabilities = { scale: true, needsRoot: false, sharesHost: false, sharedVolumes: false, reachesNodes: false };
  private managerRef: Promise<EngineRef> | undefined;
  private ready: Promise<EnsuredImage> | undefined;

  constructor(
    hosts: ProviderHost[],
    /** Where the node image goes through (pushed once, pulled by each engine); none: saved into each engine from the first. */
    private readonly registry?: string,
  ) {
    super(hosts.map((h) => ({ name: h.name, endpoint: h.endpoint, docker: engineAt(h.endpoint, h.tlsCertPath) })));
  }

  /** The hosts' engines, by name. */
  get hosts(): readonly EngineRef[] {
    return this.engines;
  }

  private async swarmInfo(e: EngineRef): Promise<SwarmInfo> {
    return ((await answerWithin(e, e.docker.info() as Promise<{ Swarm?: SwarmInfo }>)).Swarm ?? {}) as SwarmInfo;
  }

  /**
   * This machine is not on the overlay network: a node's published port, at its host's address
   * in the swarm (the one the hosts reach each other by).
   */
  override async reach(label: ClusterLabel, hostname: string, _address: string, port: number): Promise<{ address: string; port: number }> {
    const e = await this.find(label, hostname);
    const info = e ? await e.docker.getContainer(containerName(label, hostname)).inspect().catch(() => undefined) : undefined;
    if (!e || !info?.State.Running) throw new SlurmkitError('NOT_FOUND', `node ${hostname} of cluster ${label.name} runs on no host`, { hint: `slurmkit start ${label.name}` });
    const bound = (info.NetworkSettings.Ports?.[`${port}/tcp`] ?? []).find((b) => b.HostPort && !b.HostIp.includes(':'));
    if (!bound) {
      throw new SlurmkitError('CONFLICT', `port ${port} of ${hostname} is not published on host ${e.name} (a node made by an earlier slurmkit)`, {
        hint: `slurmkit stop ${label.name} && slurmkit start ${label.name} makes it again with the port`,
      });
    }
    const address = (await this.swarmInfo(e)).NodeAddr;
    if (!address) throw new SlurmkitError('PRECONDITION', `host ${e.name} has no address in the swarm`, { hint: `slurmkit doctor -f <spec>` });
    return { address, port: Number(bound.HostPort) };
  }

  /**
   * A container joins the overlay network through the swarm's manager, which refuses hosts it
   * counts as down: a host back from an outage (its engine answers again) is waited for until
   * the manager sees it ready, at most READY_WAIT_MS.
   */
  protected override async readyToRun(engines: EngineRef[]): Promise<void> {
    const manager = await this.manager();
    const deadline = Date.now() + READY_WAIT_MS;
    for (;;) {
      const ids = await Promise.all(engines.map(async (e) => (await this.swarmInfo(e)).NodeID));
      const nodes = (await answerWithin(manager, manager.docker.listNodes())) as { ID: string; Status?: { State?: string } }[];
      const waiting = engines.filter((_, i) => nodes.find((n) => n.ID === ids[i])?.Status?.State !== 'ready');
      if (waiting.length === 0) return;
      if (Date.now() > deadline) {
        throw new SlurmkitError('PRECONDITION', `the swarm's manager does not count ${waiting.map((e) => `host ${e.name}`).join(', ')} as ready after ${READY_WAIT_MS / 1000} s`, {
          hint: `see docker -H ${manager.endpoint} node ls: a host back from an outage rejoins by itself within seconds; one that does not may be cut off from 2377/tcp, 7946/tcp and udp or 4789/udp`,
        });
      }
      await sleep(500);
    }
  }

  /** The first host whose engine manages the swarm. */
  protected override manager(): Promise<EngineRef> {
    if (this.engines.length === 0) return Promise.reject(noHosts());
    this.managerRef ??= (async () => {
      const infos = await Promise.all(this.engines.map((e) => this.swarmInfo(e).catch(() => ({}) as SwarmInfo)));
      const i = infos.findIndex((s) => s.LocalNodeState === 'active' && s.ControlAvailable === true);
      if (i < 0) {
        throw new SlurmkitError('PRECONDITION', `no host of ${this.engines.map((e) => e.name).join(', ')} manages a swarm`, {
          hint: 'slurmkit up joins the hosts into one (the first becomes its manager); a swarm made elsewhere needs one of its managers among provider.hosts',
        });
      }
      return this.engines[i]!;
    })();
    this.managerRef.catch(() => (this.managerRef = undefined));
    return this.managerRef;
  }

  /**
   * Joins the hosts into one swarm (the first host's, made there when no host is in one yet),
   * labels each swarm node with its host name, then puts the node image on every engine: built
   * (or taken from the cache) on the manager, loaded into each engine that lacks it (through
   * the spec's registry when it names one), checked by image id: no registry is needed.
   */
  override prepare(log?: (line: string) => void): Promise<EnsuredImage> {
    if (this.engines.length === 0) return Promise.reject(noHosts());
    this.ready ??= (async () => {
      const manager = await this.ensureSwarm(log);
      const image = await ensureRuntime(manager.docker, await ensureImage(manager.docker, defaultRecipe(), log), log);
      const others = this.engines.filter((e) => e !== manager);
      await Promise.all(others.map((e) => answerWithin(e, e.docker.ping())));
      if (this.registry) await distributeThroughRegistry(manager.docker, others, image.tag, this.registry, log);
      else await distributeImage(manager.docker, others, image.tag, log);
      return image;
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  private async ensureSwarm(log?: (line: string) => void): Promise<EngineRef> {
    let infos = await Promise.all(this.engines.map((e) => this.swarmInfo(e)));
    const stuck = this.engines.filter((_, i) => !['active', 'inactive'].includes(infos[i]!.LocalNodeState ?? 'inactive'));
    if (stuck.length > 0) {
      throw new SlurmkitError('PRECONDITION', `${stuck.map((e) => `host ${e.name}`).join(', ')}: the engine's swarm state is ${stuck.map((e) => infos[this.engines.indexOf(e)]!.LocalNodeState).join(', ')}, not active`, {
        hint: `look at docker -H ${stuck[0]!.endpoint} info; docker swarm leave --force on that host lets slurmkit join it again`,
      });
    }
    let m = infos.findIndex((s) => s.LocalNodeState === 'active' && s.ControlAvailable === true);
    if (m < 0 && infos.some((s) => s.LocalNodeState === 'active')) {
      const members = this.engines.filter((_, i) => infos[i]!.LocalNodeState === 'active').map((e) => e.name);
      throw new SlurmkitError('PRECONDITION', `${members.join(', ')} belong to a swarm whose managers are not among provider.hosts`, {
        hint: 'add one of its managers to provider.hosts (docker node ls on a manager lists them)',
      });
    }
    if (m < 0) {
      const first = this.engines[0]!;
      log?.(`making a swarm with ${first.name} as its manager`);
      try {
        await first.docker.swarmInit({ ListenAddr: '0.0.0.0:2377', ForceNewCluster: false });
      } catch (err) {
        throw new SlurmkitError('COMMAND_FAILED', `host ${first.name}: swarm init failed: ${engineMessage(err)}`, { hint: `run docker -H ${first.endpoint} swarm init --advertise-addr ADDRESS with the address the other hosts reach it on, then slurmkit up again` });
      }
      infos = await Promise.all(this.engines.map((e) => this.swarmInfo(e)));
      m = 0;
    }
    const manager = this.engines[m]!;
    const managerInfo = infos[m]!;
    const swarm = (await manager.docker.swarmInspect()) as { JoinTokens: { Worker: string } };
    const joining = this.engines.filter((_, i) => infos[i]!.LocalNodeState !== 'active');
    await Promise.all(
      joining.map(async (e) => {
        log?.(`joining ${e.name} to the swarm of ${manager.name}`);
        try {
          await e.docker.swarmJoin({ ListenAddr: '0.0.0.0:2377', RemoteAddrs: [`${managerInfo.NodeAddr}:2377`], JoinToken: swarm.JoinTokens.Worker });
        } catch (err) {
          throw new SlurmkitError('COMMAND_FAILED', `host ${e.name}: could not join the swarm of ${manager.name} at ${managerInfo.NodeAddr}:2377: ${engineMessage(err)}`, {
            hint: 'the hosts must reach each other on TCP 2377 and 7946, UDP 7946 and 4789 (`slurmkit doctor` checks them)',
          });
        }
      }),
    );
    if (joining.length > 0) infos = await Promise.all(this.engines.map((e) => this.swarmInfo(e)));
    // Every host must be a member of this swarm, not of another one.
    const nodes = (await manager.docker.listNodes()) as { ID: string; Version: { Index: number }; Spec: Record<string, unknown> & { Labels?: Record<string, string> } }[];
    const strangers = this.engines.filter((_, i) => !nodes.some((n) => n.ID === infos[i]!.NodeID));
    if (strangers.length > 0) {
      throw new SlurmkitError('PRECONDITION', `${strangers.map((e) => e.name).join(', ')} belong to another swarm than ${manager.name}'s`, {
        hint: 'give provider.hosts the engines of one swarm, or run docker swarm leave on the others',
      });
    }
    // Each swarm node carries the host name of the spec (`docker node ls` shows the same
    // hostname for engines in containers or namespaces of one machine).
    for (const [i, e] of this.engines.entries()) {
      const node = nodes.find((n) => n.ID === infos[i]!.NodeID)!;
      if (node.Spec.Labels?.[LABEL.host] === e.name) continue;
      await manager.docker.getNode(node.ID).update({ version: node.Version.Index, ...node.Spec, Labels: { ...node.Spec.Labels, [LABEL.host]: e.name } });
    }
    this.managerRef = Promise.resolve(manager);
    return manager;
  }

  /** An attachable overlay network: containers on every host join it, each at its planned address. */
  protected override networkOptions(req: NetworkRequest): Docker.NetworkCreateOptions {
    const bridge = super.networkOptions(req);
    return { Name: bridge.Name, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: bridge.Labels, IPAM: bridge.IPAM };
  }

  override async ensureNetwork(req: NetworkRequest): Promise<void> {
    await this.ensureSwarm();
    await super.ensureNetwork(req);
  }

  override async preflight(req: PreflightRequest): Promise<Check[]> {
    if (this.engines.length === 0) return [{ name: 'swarm hosts', ok: false, detail: 'no hosts given', fix: noHosts().hint }];
    // What the swarm's manager makes of each member (none yet: no swarm, or no manager answers).
    const view = this.manager()
      .then(async (m) => (await answerWithin(m, m.docker.listNodes())) as { ID: string; Status?: { State?: string; Message?: string } }[])
      .catch(() => undefined);
    const checks = await Promise.all(this.engines.map((e) => this.hostChecks(e, view, req.thorough === true)));
    return checks.flat();
  }

  /**
   * A host: its engine answers (within the timeout), its swarm membership as the host and the
   * manager see it (a member the manager counts as down cannot reach it: ports), the node image.
   */
  private async hostChecks(e: EngineRef, view: Promise<{ ID: string; Status?: { State?: string; Message?: string } }[] | undefined>, thorough: boolean): Promise<Check[]> {
    const name = `host ${e.name}`;
    let version: Awaited<ReturnType<typeof reachable>>;
    try {
      version = await answerWithin(e, reachable(e.docker, e.endpoint));
    } catch (err) {
      return [{ name, ok: false, detail: (err as Error).message.replace(`${name}: `, ''), fix: (err as SlurmkitError).hint ?? `start the engine on ${e.name}` }];
    }
    const checks: Check[] = [{ name, ok: true, detail: `${e.endpoint}: Docker ${version.version} (API ${version.apiVersion})` }];
    const swarm = await this.swarmInfo(e).catch(() => ({}) as SwarmInfo);
    const state = swarm.LocalNodeState ?? 'inactive';
    const seen = state === 'active' ? (await view)?.find((n) => n.ID === swarm.NodeID)?.Status : undefined;
    const check = (ok: boolean, detail: string, fix?: string): Check => ({ name: `${name} swarm`, ok, detail, ...(fix ? { fix } : {}) });
    // doctor fails it; up and start go on, and their nodes there wait for the host (readyToRun).
    if (seen && seen.State !== 'ready') {
      checks.push(
        check(
          !thorough,
          `the swarm's manager counts ${swarm.NodeID} at ${swarm.NodeAddr} as ${seen.State}${seen.Message ? ` (${seen.Message})` : ''}`,
          'let the hosts reach each other on 2377/tcp (managers), 7946/tcp and udp (gossip) and 4789/udp (the overlay network); the host rejoins by itself',
        ),
      );
    } else if (state === 'active') {
      checks.push(check(true, `${swarm.ControlAvailable ? 'manager' : 'worker'} ${swarm.NodeID} at ${swarm.NodeAddr}`));
    } else if (state === 'inactive') {
      checks.push(check(true, 'in no swarm yet: slurmkit up joins it'));
    } else {
      checks.push(check(false, `swarm state ${state}${swarm.Error ? `: ${swarm.Error}` : ''}`, `docker -H ${e.endpoint} swarm leave --force, then slurmkit up joins it again`));
    }
    // The image nodes run: the node image with this version of slurmkit's program.
    const tag = `${imageTag(defaultRecipe())}-${await runtimeHash()}`;
    const has = await e.docker
      .getImage(tag)
      .inspect()
      .then(() => true)
      .catch(() => false);
    checks.push({ name: `${name} node image`, ok: true, detail: has ? `${tag} is in the engine` : `${tag} is loaded into it on first use` });
    return checks;
  }
}

function noHosts(): SlurmkitError {
  return new SlurmkitError('USAGE', 'the swarm provider needs its hosts', {
    hint: 'give them in the spec: provider: {type: swarm, hosts: [{name: h1, endpoint: "unix:///run/docker.sock"}, {name: h2, endpoint: "ssh://root@10.0.0.2"}]}',
  });
}
