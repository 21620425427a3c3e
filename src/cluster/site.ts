/**
 * The site services of a cluster beyond Slurm's own daemons: accounting (MariaDB and
 * slurmdbd on the head), cluster users with a shared home, and what they need on disk.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ClusterConfig } from '../spec/types.js';
import { renderSlurmdbdConf } from '../slurm/render.js';
import { conflictsWithHost, renderGroup, renderPasswd } from '../slurm/accounts.js';
import { SlurmkitError } from '../util/errors.js';
import { run } from '../util/run.js';
import { slurmkitHome, type ClusterPaths } from './paths.js';

/** What a running cluster offers beyond slurmctld/slurmd, fixed at `up`. */
export interface SiteFeatures {
  accounting: boolean;
  rest: boolean;
  users: string[];
}

export const NO_SITE: SiteFeatures = { accounting: false, rest: false, users: [] };

export function siteOf(cfg: ClusterConfig): SiteFeatures {
  return { accounting: cfg.accounting, rest: cfg.rest, users: cfg.users.map((u) => u.name) };
}

const MYSQL_SOCKET = '/run/mysqld/mysqld.sock';
/** Small and fast: a teaching cluster's accounting database is tiny, and nothing here is worth an fsync per commit. */
const MARIADB_OPTIONS = [
  '--no-defaults',
  '--user=root',
  '--datadir=/var/lib/mysql',
  '--skip-name-resolve',
  '--innodb-buffer-pool-size=32M',
  '--innodb-log-file-size=8M',
  '--innodb-flush-log-at-trx-commit=2',
  '--skip-log-bin',
];

/** Where the pristine MariaDB data folder is kept, made once per SLURMKIT_HOME: building one takes seconds. */
const templateDir = () => join(slurmkitHome(), 'cache', 'mariadb-datadir');

async function mariadbTemplate(): Promise<string> {
  const dir = templateDir();
  if (existsSync(join(dir, 'mysql'))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  await run('mariadb-install-db', [...MARIADB_OPTIONS.filter((o) => !o.startsWith('--datadir')), `--datadir=${tmp}`, '--auth-root-authentication-method=socket', '--skip-test-db'], {
    timeoutMs: 120_000,
  }).catch(async (err: unknown) => {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  });
  await rename(tmp, dir).catch(async () => {
    // Another slurmkit made it meanwhile: theirs is as good.
    await rm(tmp, { recursive: true, force: true });
  });
  return dir;
}

/** Paths of the site's own files in the cluster folder. */
export function sitePaths(paths: ClusterPaths) {
  return {
    /** Seen as /var/lib/mysql on the head. */
    mysqlData: join(paths.root, 'var', 'lib', 'mysql'),
    /** Seen as /etc/mysql on the head: the SQL that creates the database user, with its password. */
    dbSecrets: join(paths.root, 'secrets', 'db'),
    /** An empty file: the head mounts slurmdbdConfSecret over it; other nodes see only this. */
    slurmdbdConf: join(paths.slurmEtc, 'slurmdbd.conf'),
    /** slurmdbd.conf itself, with the database password: seen as /etc/slurm/slurmdbd.conf on the head only. */
    slurmdbdConfSecret: join(paths.secrets, 'db', 'slurmdbd.conf'),
    passwd: join(paths.root, 'etc', 'passwd'),
    group: join(paths.root, 'etc', 'group'),
    /** Seen as /home on every node. */
    home: join(paths.root, 'home'),
    /** Seen as /shared on every node. */
    shared: join(paths.root, 'shared'),
    /** Seen as /run/slurmrestd on the head: slurmrestd's socket, for root on the host and the head only. */
    rest: join(paths.root, 'run', 'rest'),
  };
}

/** Writes users, homes, shared folder and, with accounting, the database and its secrets. Idempotent. */
export async function writeSiteFiles(cfg: ClusterConfig, paths: ClusterPaths): Promise<void> {
  const sp = sitePaths(paths);
  const [hostPasswd, hostGroup] = await Promise.all([readFile('/etc/passwd', 'utf8'), readFile('/etc/group', 'utf8')]);
  const clashes = conflictsWithHost(hostPasswd, hostGroup, cfg);
  if (clashes.length > 0) {
    throw new SlurmkitError('SPEC_INVALID', `${clashes.length} cluster user(s) or group(s) clash with this machine's system accounts`, {
      details: clashes,
      hint: 'pick other names or ids in users:',
    });
  }
  await writeFile(sp.passwd, renderPasswd(hostPasswd, cfg.users), { mode: 0o644 });
  await writeFile(sp.group, renderGroup(hostGroup, cfg.unixGroups, hostPasswd), { mode: 0o644 });
  await mkdir(sp.home, { recursive: true, mode: 0o755 });
  await mkdir(sp.shared, { recursive: true });
  await chmod(sp.shared, 0o1777);
  for (const u of cfg.users) {
    const home = join(sp.home, u.name);
    await mkdir(home, { recursive: true, mode: 0o700 });
    await chown(home, u.uid, u.gid);
  }
  if (cfg.rest) {
    await mkdir(sp.rest, { recursive: true, mode: 0o700 });
    await chmod(sp.rest, 0o700);
    await mkdir(dirname(paths.jwtKey), { recursive: true, mode: 0o700 });
    if (!existsSync(paths.jwtKey)) await writeFile(paths.jwtKey, randomBytes(32), { mode: 0o600, flag: 'wx' });
  }
  if (cfg.accounting) {
    await mkdir(sp.dbSecrets, { recursive: true, mode: 0o700 });
    if (!existsSync(join(sp.mysqlData, 'mysql'))) {
      await cp(await mariadbTemplate(), sp.mysqlData, { recursive: true });
      await chmod(sp.mysqlData, 0o700);
    }
    const passFile = join(sp.dbSecrets, 'password');
    if (!existsSync(passFile)) await writeFile(passFile, randomBytes(24).toString('base64url'), { mode: 0o600, flag: 'wx' });
    const pass = (await readFile(passFile, 'utf8')).trim();
    // SQL through stdin from a root-only file: the password is on no command line.
    await writeFile(
      join(sp.dbSecrets, 'init.sql'),
      [
        'CREATE DATABASE IF NOT EXISTS slurm_acct_db;',
        `CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${pass}';`,
        `ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${pass}';`,
        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';",
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await writeFile(sp.slurmdbdConfSecret, renderSlurmdbdConf(cfg, { storagePass: pass }), { mode: 0o600 });
    await chmod(sp.slurmdbdConfSecret, 0o600);
    await writeFile(sp.slurmdbdConf, '', { mode: 0o644 });
  }
}

/** Programs the site runs on this machine (not in a node) while it writes the cluster's files. */
export function siteHostPrograms(site: SiteFeatures): string[] {
  return site.accounting ? ['mariadb-install-db'] : [];
}

/**
 * The cluster, its account and its users in the format of `sacctmgr dump` / `sacctmgr load`
 * (https://slurm.schedmd.com/sacctmgr.html#SECTION_FLAT-FILE-DUMP-AND-LOAD). Names are
 * checked by the spec (letters, digits, "-", "_"), so they need no escaping.
 */
export function associationsFile(clusterName: string, users: string[]): string {
  return [
    `Cluster - '${clusterName}'`,
    ...(users.length > 0
      ? ["Parent - 'root'", "Account - 'users':Description='cluster-users':Organization='slurmkit'", "Parent - 'users'", ...users.map((u) => `User - '${u}'`)]
      : []),
    '',
  ].join('\n');
}

/** Boot steps on the head for accounting, before slurmctld starts (so it registers at once). */
export function accountingSteps(clusterName: string, users: string[], makeDatabase = false): { name: string; start: string; programs: string[] }[] {
  const wait = (what: string, probe: string, proc: string, log: string) =>
    [
      `for _ in $(seq 400); do`,
      `  ${probe} >/dev/null 2>&1 && break`,
      `  pgrep -x ${proc} >/dev/null || { echo "${what} exited:" >&2; tail -5 ${log} >&2; exit 1; }`,
      '  sleep 0.05',
      'done',
    ].join('\n');
  const mariadb = [
    ...(makeDatabase
      ? [
          `[ -d /var/lib/mysql/mysql ] || mariadb-install-db ${MARIADB_OPTIONS.join(' ')} --auth-root-authentication-method=socket --skip-test-db >/var/log/slurm/mariadb-install.log 2>&1 || { tail -5 /var/log/slurm/mariadb-install.log >&2; exit 1; }`,
        ]
      : []),
    'mkdir -p /run/mysqld',
    `setsid mariadbd ${MARIADB_OPTIONS.join(' ')} --socket=${MYSQL_SOCKET} --pid-file=/run/mysqld/mariadbd.pid --skip-networking --log-error=/var/log/slurm/mariadb.log </dev/null >/dev/null 2>&1 &`,
    wait('mariadbd', `mariadb-admin --no-defaults --socket=${MYSQL_SOCKET} ping`, 'mariadbd', '/var/log/slurm/mariadb.log'),
    `mariadb --no-defaults --socket=${MYSQL_SOCKET} < /etc/mysql/init.sql`,
  ].join('\n');
  const slurmdbd = [
    'slurmdbd',
    wait('slurmdbd', 'sacctmgr -n -P list cluster format=cluster', 'slurmdbd', '/var/log/slurm/slurmdbd.log'),
    // Registered before slurmctld starts, and every user gets an association: no manual sacctmgr.
    // One `sacctmgr load` makes the cluster, the account and every user in one request (0.7 s
    // per separate `sacctmgr add` here); loading the same file again adds nothing.
    'assoc=$(mktemp)',
    `cat > "$assoc" <<'EOF'\n${associationsFile(clusterName, users)}EOF`,
    'sacctmgr -i load file="$assoc" >/var/log/slurm/sacctmgr-load.log 2>&1 || { tail -5 /var/log/slurm/sacctmgr-load.log >&2; rm -f "$assoc"; exit 1; }',
    'rm -f "$assoc"',
  ].join('\n');
  return [
    { name: 'mariadbd', start: mariadb, programs: ['mariadbd', 'mariadb-admin', 'mariadb', 'pgrep', 'tail'] },
    { name: 'slurmdbd', start: slurmdbd, programs: ['slurmdbd', 'sacctmgr', 'pgrep', 'tail'] },
  ];
}

/** The socket of the cluster's Slurm REST API on the host. */
export const restSocket = (paths: ClusterPaths): string => join(sitePaths(paths).rest, 'slurmrestd.sock');

/**
 * slurmrestd on a unix socket that only root can reach (on the host, through the cluster
 * folder, and in the head), and every request must also carry a JWT from `scontrol token`.
 * Local (peer credential) auth cannot serve the host: its PID is not in the head's namespace.
 */
export function restStep(accounting: boolean): { name: string; start: string; programs: string[] } {
  return {
    name: 'slurmrestd',
    programs: ['slurmrestd', 'pgrep', 'tail'],
    start: [
      'mkdir -p -m 0700 /run/slurmrestd && rm -f /run/slurmrestd/slurmrestd.sock',
      // A container's seccomp profile refuses unshare(2) (Docker's default): slurmrestd then does without.
      'sec=disable_user_check; unshare --ipc true 2>/dev/null || sec=$sec,disable_unshare_sysv,disable_unshare_files',
      `SLURM_JWT=daemon SLURMRESTD_SECURITY=$sec setsid slurmrestd -a rest_auth/jwt${accounting ? '' : ' -s openapi/v0.0.38'} unix:/run/slurmrestd/slurmrestd.sock </dev/null >>/var/log/slurm/slurmrestd.log 2>&1 &`,
      // Its pid first: right after the fork the child may not be called slurmrestd yet.
      'pid=$!',
      'for _ in $(seq 200); do [ -S /run/slurmrestd/slurmrestd.sock ] && break; kill -0 $pid 2>/dev/null || pgrep -x slurmrestd >/dev/null || { echo "slurmrestd exited:" >&2; tail -5 /var/log/slurm/slurmrestd.log >&2; exit 1; }; sleep 0.05; done',
    ].join('\n'),
  };
}

export async function dbPasswordMode(paths: ClusterPaths): Promise<number | undefined> {
  const f = join(sitePaths(paths).dbSecrets, 'password');
  return existsSync(f) ? (await stat(f)).mode & 0o777 : undefined;
}
