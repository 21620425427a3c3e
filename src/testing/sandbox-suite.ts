/**
 * Sandboxed partitions on a real cluster, for each provider's test file: escape attempts from
 * inside jobs, each must fail and leave the node healthy; isolation between users; nothing of a
 * job left on its node; nothing of the cluster left after down. What is checked on a node is
 * looked at from inside it, so the same tests hold for nodes that do not share this machine.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headOf } from '../cluster/nodes.js';
import { ClusterPaths, homeTag } from '../cluster/paths.js';
import { restSocket } from '../cluster/site.js';
import type { ClusterState } from '../cluster/state.js';
import { sh, shOk } from './harness.js';
import { withCluster } from './cluster-fixture.js';
import { parseSpec } from '../spec/load.js';
import { sandboxGroup } from '../sandbox/sandbox.js';

/** perf_event_open's system call number on this machine's architecture (nodes run its kernel). */
const PERF_EVENT_OPEN = process.arch === 'arm64' ? 241 : 298;

const spec = (name: string, provider: string) => `name: ${name}
provider:
  ${provider.replace(/\n/g, '\n  ')}
nodes: [{name: c, count: 2, cpus: 2}, {name: n, count: 1}]
users: [{name: alice}, {name: bob}]
rest: true
partitions:
  - {name: lab, nodes: {group: c}, sandbox: {network: none, memoryMiB: 128, pids: 64}}
  - {name: net, nodes: {group: n}, sandbox: {network: cluster, perf: false}}
`;

/**
 * The suite on `provider`; `leftovers` lists what of a cluster (by id) is still on this machine
 * or in the provider after down. The spec's `provider:` value is `providerYaml()` (asked for once
 * the test file's before hooks have run: a test swarm's endpoints), else the provider's name;
 * `skip` skips the suite (a provider this machine lacks).
 */
export function sandboxSuite(
  provider: 'local' | 'docker' | 'swarm',
  leftovers: (id: string) => Promise<string[]>,
  opts: { skip?: string | false; providerYaml?: () => string } = {},
): void {
  const name = `${provider[0]}sbx`;
  describe(`sandboxed partitions on provider ${provider}`, { skip: opts.skip ?? false }, () => {
    let state: ClusterState;
    withCluster(
      async () => {
        const specText = spec(name, opts.providerYaml?.() ?? provider);
        return { config: parseSpec(specText, name), specText };
      },
      (s) => (state = s),
    );
    /** The task groups (cgroup v1) of the cluster's sandboxed tasks on a node, seen from inside it. */
    const taskGroups = async (node: string, controller: string) =>
      (await shOk(state, `find /sys/fs/cgroup/${controller}/${sandboxGroup(homeTag(), state.id)} -mindepth 1 -maxdepth 1 -type d -printf '%f\\n' 2>/dev/null || true`, node)).trim().split('\n').filter(Boolean);

    /** Runs a shell script as a job step of `user` on `node`, through srun in the head. */
    const step = (user: string, node: string, script: string, timeoutSeconds = 60) =>
      sh(state, `cd /home/${user} && timeout ${timeoutSeconds} runuser -u ${user} -- srun --quiet -N1 -p ${node.startsWith('n') ? 'net' : 'lab'} -w ${node} -t 2 bash -c ${JSON.stringify(script)} 2>&1`);

    /** The node still runs jobs as before. */
    const healthy = async (node: string) => {
      assert.equal((await step('alice', node, 'echo alive')).stdout.trim(), 'alive', `${node} runs jobs`);
      const st = (await shOk(state, `sinfo -h -n ${node} -o %T`)).trim();
      assert.doesNotMatch(st, /drain|down|fail|unknown/, `${node} is not drained or down: ${st}`);
    };

    test('secrets, daemons and the network are out of reach', async () => {
      const head = headOf(state).address;
      const r = await step(
        'alice',
        'c1',
        [
          'cat /etc/munge/munge.key >/dev/null 2>&1 && echo READ-MUNGE-KEY',
          'munge -n >/dev/null 2>&1 && echo MUNGE-CREDENTIAL',
          'ls /run/munge | grep -q . && echo MUNGE-SOCKET',
          `for port in 6817 6818 6819 3306 10000; do timeout 2 bash -c "exec 3<>/dev/tcp/${head}/$port" 2>/dev/null && echo "CONNECTED-$port"; done`,
          'timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/6818" 2>/dev/null && echo CONNECTED-LOCAL-SLURMD',
          'ip -o link | grep -v " lo:" | grep -q . && echo HAS-INTERFACES',
          'find /var/lib/slurm /run/slurmkit /etc/munge -mindepth 1 2>/dev/null | grep -q . && echo SEES-SPOOL',
          // The REST API's socket (slurmrestd on the head) at its path on this machine, and the cluster's secrets.
          `python3 -c "import socket; socket.socket(socket.AF_UNIX).connect('${restSocket(ClusterPaths.of(state.name))}')" 2>/dev/null && echo CONNECTED-REST`,
          `ls ${ClusterPaths.of(state.name).secrets} >/dev/null 2>&1 && echo SEES-SECRETS`,
          'echo done',
        ].join('; '),
      );
      assert.equal(r.stdout.trim(), 'done', r.stdout);
      await healthy('c1');
    });

    test('network: cluster reaches the cluster\'s nodes, but none of its daemons and nothing beyond the cluster', async () => {
      const at = (name: string) => state.nodes.find((n) => n.name === name)!.address;
      const head = headOf(state).address;
      // Something of the cluster's own to reach on c1 (root's, not a job), for a minute at most.
      await shOk(state, `setsid timeout 60 /usr/bin/python3 -m http.server 7000 --bind ${at('c1')} >/dev/null 2>&1 < /dev/null & for _ in $(seq 100); do (exec 3<>/dev/tcp/${at('c1')}/7000) 2>/dev/null && break; sleep 0.05; done`, 'c1');
      const targets = [
        [at('c1'), 7000],
        [head, 6817],
        [head, 6819],
        [head, 3306],
        [head, 10000],
        [at('c1'), 6818],
        ['127.0.0.1', 6818],
        [state.network.gateway, 22],
      ] as const;
      const r = await step('alice', 'n1', targets.map(([a, p]) => `timeout 2 bash -c "exec 3<>/dev/tcp/${a}/${p}" 2>/dev/null && echo "open ${a}:${p}" || echo "closed ${a}:${p}"`).join('; '));
      assert.deepEqual(
        r.stdout.trim().split('\n'),
        targets.map(([a, p], i) => `${i === 0 ? 'open' : 'closed'} ${a}:${p}`),
        r.stdout,
      );
      // Root on the node (slurmd, slurmstepd) is not held back.
      assert.equal((await sh(state, `timeout 2 bash -c "exec 3<>/dev/tcp/${head}/6817" && echo open`, 'n1')).stdout.trim(), 'open');
      await healthy('n1');
    });

    test("performance counters: perf stat measures a job's own processes inside the sandbox", async () => {
      // Software counters everywhere; hardware ones only where the machine has a PMU (this VM has none).
      const r = await step('alice', 'c1', 'perf stat -x, -e task-clock,page-faults,context-switches python3 -c "sum(range(10**6))" 2>&1 >/dev/null');
      const counted = r.stdout.trim().split('\n').filter((l) => /^[\d.]+,[^,]*,(task-clock|page-faults|context-switches)/.test(l));
      assert.equal(counted.length, 3, r.stdout);
      assert.ok(Number(counted[0]!.split(',')[0]) > 1, `task-clock counted the work: ${counted[0]}`);
    });

    test('perf: false refuses performance counters inside the sandbox, and nothing else', async () => {
      // perf_event_open with no attributes: EFAULT where it is allowed (it got as far as reading them), EACCES where refused.
      const probe = `python3 -c "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); libc.syscall(${PERF_EVENT_OPEN}, 0, 0, -1, -1, 0); print(os.strerror(ctypes.get_errno()))"`;
      assert.equal((await step('alice', 'c1', probe)).stdout.trim(), 'Bad address', 'allowed on lab (perf left at its default)');
      assert.equal((await step('alice', 'n1', probe)).stdout.trim(), 'Permission denied', 'refused on net (perf: false)');
      const r = await step('alice', 'n1', 'perf stat -x, -e task-clock true 2>&1; echo "exit $?"; python3 -c "print(sum(range(10)))"');
      assert.doesNotMatch(r.stdout, /^[\d.]+,[^,]*,task-clock/m, r.stdout);
      assert.match(r.stdout, /^45$/m, 'the job itself runs');
    });

    test("another user's process is out of sight and cannot be traced", async () => {
      // bob's process on c1, outside any job; alice's sandboxed job knows its pid.
      const pid = (await shOk(state, `runuser -u bob -- sh -c 'setsid sleep 60 >/dev/null 2>&1 < /dev/null & echo $!'`, 'c1')).trim();
      assert.equal((await shOk(state, `ps -o user= -p ${pid}`, 'c1')).trim(), 'bob');
      try {
        const r = await step(
          'alice',
          'c1',
          [
            `test -e /proc/${pid} && echo SEES-PID`,
            `python3 -c "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); print('ATTACHED' if libc.ptrace(16, ${pid}, 0, 0) == 0 else 'ptrace: ' + os.strerror(ctypes.get_errno()))"`,
            `kill -0 ${pid} 2>/dev/null && echo CAN-SIGNAL`,
            'true',
          ].join('; '),
        );
        assert.equal(r.stdout.trim(), 'ptrace: No such process', r.stdout);
        assert.equal((await sh(state, `kill -0 ${pid} && echo alive`, 'c1')).stdout.trim(), 'alive', "bob's process was not touched");
      } finally {
        await sh(state, `kill ${pid}`, 'c1');
      }
    });

    test('only the home is writable; no mount, no namespaces of its own, no other processes in sight', async () => {
      const r = await step(
        'alice',
        'c1',
        [
          'for f in /etc/x /usr/x /var/tmp/x /shared/x /opt/x; do touch $f 2>/dev/null && echo "WROTE $f"; done',
          'touch ~/mine && echo home-ok && rm ~/mine',
          'touch /tmp/t && echo tmp-ok',
          'mount -t tmpfs x /mnt 2>/dev/null && echo MOUNTED',
          'unshare -U -m true 2>/dev/null && echo UNSHARED',
          'ps -e -o user= | sort -u | tr "\\n" " "; echo',
          'ls /home/bob >/dev/null 2>&1 && echo READ-BOB',
          'echo done',
        ].join('; '),
      );
      assert.deepEqual(r.stdout.trim().split('\n'), ['home-ok', 'tmp-ok', 'alice ', 'done'], r.stdout);
      // The sandbox's /tmp was its own: nothing of it on the node.
      assert.equal((await sh(state, 'test -e /tmp/t && echo LEFT || echo gone', 'c1')).stdout.trim(), 'gone');
    });

    test('a fork bomb, a memory hog and a full /tmp end their job, not the node', async () => {
      // The bomb hits the task's process limit, and its step ends with its shell: nothing of it lives on.
      const bomb = await step('alice', 'c1', 'b() { b | b & }; b; sleep 3', 30);
      assert.notEqual(bomb.exitCode, 124, 'the step ended before the timeout');
      assert.match(bomb.stdout, /fork: (retry: )?Resource temporarily unavailable/);
      const hog = await step('alice', 'c1', 'python3 -c "x = bytearray(512 << 20); print(len(x))"');
      assert.notEqual(hog.exitCode, 0);
      assert.doesNotMatch(hog.stdout, /536870912/, 'the allocation did not succeed');
      const fill = await step('alice', 'c1', 'dd if=/dev/zero of=/tmp/fill bs=1M count=1024 2>/dev/null; echo wrote $(du -m /tmp/fill | cut -f1)');
      assert.doesNotMatch(fill.stdout, /wrote 1024/, `the sandbox's /tmp held 1 GiB: ${fill.stdout}`);
      await healthy('c1');
      assert.equal((await sh(state, 'pgrep -u alice | wc -l', 'c1')).stdout.trim(), '0', 'nothing of alice left running on c1');
    });

    test('after 50 sandboxed jobs nothing of them is left on any node', async () => {
      await shOk(state, `cd /home/bob && runuser -u bob -- sbatch --wait --array=1-50 -o /dev/null --wrap 'sleep 0.1; echo x > /tmp/left; setsid sleep 60 >/dev/null 2>&1 &' >/dev/null`);
      for (const node of ['c1', 'c2']) {
        assert.equal((await sh(state, 'pgrep -u bob | wc -l; ls /tmp | wc -l', node)).stdout.trim().split('\n').join(' '), '0 0', `${node}: no process or /tmp file of the jobs`);
      }
      for (const node of ['c1', 'c2']) {
        for (const controller of ['pids', 'memory']) assert.deepEqual(await taskGroups(node, controller), [], `${node}: no ${controller} group of a task left`);
      }
    });

    test('a node added to the sandboxed group while the cluster runs sandboxes its jobs too', async () => {
      const { addNodes } = await import('../cluster/scale.js');
      const added = await addNodes(name, { group: 'c', count: 1 });
      assert.deepEqual(added.nodes, ['c3']);
      state = added.state;
      const r = await step(
        'alice',
        'c3',
        [
          'touch /etc/x 2>/dev/null && echo WROTE-ETC',
          'ip -o link | grep -v " lo:" | grep -q . && echo HAS-INTERFACES',
          'cat /etc/munge/munge.key >/dev/null 2>&1 && echo READ-MUNGE-KEY',
          "grep -E '^[0-9]+:(pids|memory):' /proc/self/cgroup | cut -d: -f2- | sed 's/_[0-9_]*$//' | sort | tr '\\n' ' '",
        ].join('; '),
      );
      const group = sandboxGroup(homeTag(), state.id);
      assert.equal(r.stdout.trim(), `memory:/${group}/c3 pids:/${group}/c3`, r.stdout);
    });

    test('a node that cannot be cleaned after a job is drained with the reason', async () => {
      const group = sandboxGroup(homeTag(), state.id);
      // A job that waits; while it runs, something the Epilog cannot remove appears in its task's group.
      const id = (await shOk(state, `cd /home/alice && runuser -u alice -- sbatch --parsable -p lab -w c2 -o /dev/null --wrap 'sleep 3'`)).trim();
      let dir = '';
      for (let i = 0; i < 100 && !dir; i++) {
        const found = (await taskGroups('c2', 'pids')).find((d) => d.startsWith(`c2_${id}_`));
        if (found) dir = `/sys/fs/cgroup/pids/${group}/${found}`;
        else await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(dir, 'the job ran in a task group');
      await shOk(state, `mkdir ${dir}/stuck`, 'c2');
      let reason = '';
      for (let i = 0; i < 100 && !/drain/i.test(reason); i++) {
        reason = (await shOk(state, 'sinfo -h -n c2 -o "%T %E"')).trim();
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(reason, /^drain\S* .*Epilog error/i);
      // Mended by hand, the node takes jobs again.
      await shOk(state, `rmdir ${dir}/stuck ${dir}`, 'c2');
      await shOk(state, 'scontrol update nodename=c2 state=resume');
      assert.equal((await step('alice', 'c2', 'echo alive')).stdout.trim(), 'alive');
    });

    test("down removes the cluster's cgroups with everything else", async () => {
      const { down } = await import('../cluster/lifecycle.js');
      const id = state.id;
      const group = sandboxGroup(homeTag(), id);
      assert.ok((await cgroupsNamed(group)).length > 0, 'the cluster had cgroups on this machine');
      await down(name);
      assert.deepEqual(await leftovers(id), []);
      assert.deepEqual(await cgroupsNamed(group), [], 'no cgroup of the cluster left');
    });
  });
}

/** This machine's cgroup v1 folders of that name, wherever they are (a container's are under its own). */
async function cgroupsNamed(group: string): Promise<string[]> {
  const { run } = await import('../util/run.js');
  const r = await run('find', ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/memory', '-maxdepth', '4', '-type', 'd', '-name', group], { allowFailure: true });
  return r.stdout.trim().split('\n').filter(Boolean);
}
