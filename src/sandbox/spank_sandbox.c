/*
 * slurmkit's sandbox: a SPANK plugin that runs every task of a sandboxed node inside a fresh
 * bubblewrap sandbox, whoever submits it and however (sbatch, srun, salloc). slurmstepd calls
 * slurm_spank_task_init as the job's user just before it executes the task: the plugin executes
 * bwrap instead, which makes new user, PID, IPC and UTS namespaces (and a network namespace of its
 * own with network=none), mounts the node's root read-only with a private /tmp and /dev/shm,
 * hides the munge socket, the munge key and Slurm's spool and state, and binds back writable
 * only the user's home, the step's folder when it is under the home, and the configured paths.
 * As root, before the task runs (task_post_fork), the task is put into cgroup v1 pids and
 * memory groups of its own with the configured limits; they are removed when the task exits.
 *
 * Arguments: conf=/etc/slurm/sandbox.conf (the nodes' settings) and group=<name> (the cgroup
 * folder of the cluster's sandboxed tasks, under each controller; slurmkit removes it with the
 * cluster). The settings file has one line per sandboxed node:
 *   <hostname> network=none|cluster pids=<n> memory_mib=<n> writable=<path>[:<path>...] [perf=no]
 * With perf=no, a seccomp filter (set before bwrap runs, inherited by the task and everything it
 * starts) refuses perf_event_open with EACCES, and every system call of another ABI (a 32-bit
 * or x32 call would go around the filter) with ENOSYS.
 * A node without a line is not sandboxed. Built by slurmkit with Debian's gcc and libslurm-dev.
 */
#include <slurm/spank.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

SPANK_PLUGIN(slurmkit_sandbox, 1);

#define MAX_ARGS 128
#define MAX_WRITABLE 16

static struct {
	int sandboxed;
	int no_network;
	long pids;
	long memory_mib;
	char writable[MAX_WRITABLE][PATH_MAX];
	int n_writable;
	int no_perf;
	/* The cgroup folder (under each controller) of this cluster's sandboxed tasks. */
	char group[128];
} cfg;

/* Paths the sandbox hides behind an empty tmpfs when the node has them. */
static const char *hidden[] = { "/run/munge", "/etc/munge", "/var/lib/slurm", "/var/spool/slurmd", "/var/spool/slurm",
				"/var/log/slurm", "/run/slurmkit", "/run/slurmrestd", "/run/mysqld", "/var/lib/mysql", NULL };

static void parse_option(const char *opt)
{
	if (strcmp(opt, "network=none") == 0)
		cfg.no_network = 1;
	else if (strcmp(opt, "perf=no") == 0)
		cfg.no_perf = 1;
	else if (strncmp(opt, "pids=", 5) == 0)
		cfg.pids = strtol(opt + 5, NULL, 10);
	else if (strncmp(opt, "memory_mib=", 11) == 0)
		cfg.memory_mib = strtol(opt + 11, NULL, 10);
	else if (strncmp(opt, "writable=", 9) == 0) {
		char buf[4096];
		snprintf(buf, sizeof buf, "%s", opt + 9);
		for (char *save = NULL, *p = strtok_r(buf, ":", &save); p && cfg.n_writable < MAX_WRITABLE; p = strtok_r(NULL, ":", &save))
			snprintf(cfg.writable[cfg.n_writable++], PATH_MAX, "%s", p);
	}
}

/* Reads this node's line of the configuration file; a node without one is not sandboxed. */
static int read_conf(const char *path)
{
	char host[256], line[8192];
	if (gethostname(host, sizeof host) != 0)
		return -1;
	FILE *f = fopen(path, "r");
	if (!f) {
		slurm_error("slurmkit_sandbox: cannot read %s: %m", path);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		char *save = NULL, *name = strtok_r(line, " \t\n", &save);
		if (!name || name[0] == '#' || strcmp(name, host) != 0)
			continue;
		cfg.sandboxed = 1;
		for (char *opt = strtok_r(NULL, " \t\n", &save); opt; opt = strtok_r(NULL, " \t\n", &save))
			parse_option(opt);
	}
	fclose(f);
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	if (!spank_remote(sp))
		return ESPANK_SUCCESS;
	memset(&cfg, 0, sizeof cfg);
	snprintf(cfg.group, sizeof cfg.group, "slurmkit-sandbox");
	for (int i = 0; i < ac; i++) {
		if (strncmp(av[i], "group=", 6) == 0 && strchr(av[i] + 6, '/') == NULL)
			snprintf(cfg.group, sizeof cfg.group, "%s", av[i] + 6);
		else if (strncmp(av[i], "conf=", 5) == 0 && read_conf(av[i] + 5) != 0)
			return ESPANK_ERROR; /* a sandboxed node must never run a task unsandboxed */
	}
	return ESPANK_SUCCESS;
}

/* The cgroup v1 folder of one task for one controller. */
static void task_cgroup(char *out, size_t len, const char *controller, spank_t sp)
{
	uint32_t job = 0, step = 0, task = 0;
	spank_get_item(sp, S_JOB_ID, &job);
	spank_get_item(sp, S_JOB_STEPID, &step);
	spank_get_item(sp, S_TASK_GLOBAL_ID, &task);
	char host[256] = "node";
	gethostname(host, sizeof host);
	snprintf(out, len, "/sys/fs/cgroup/%s/%s/%s_%u_%u_%u", controller, cfg.group, host, job, step, task);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Puts the task into a group of `controller` with `file` set to `value`. */
static int limit_task(spank_t sp, const char *controller, const char *file, long value, pid_t pid)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], text[64];
	snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s/%s", controller, cfg.group);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -1;
	task_cgroup(dir, sizeof dir, controller, sp);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -1;
	snprintf(path, sizeof path, "%s/%s", dir, file);
	snprintf(text, sizeof text, "%ld", value);
	if (write_file(path, text) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	snprintf(text, sizeof text, "%d", (int)pid);
	return write_file(path, text);
}

/* As root, in slurmstepd, once the task's process exists and before it runs the task. */
int slurm_spank_task_post_fork(spank_t sp, int ac, char **av)
{
	pid_t pid;
	if (!cfg.sandboxed || spank_get_item(sp, S_TASK_PID, &pid) != ESPANK_SUCCESS)
		return ESPANK_SUCCESS;
	if (cfg.pids > 0 && limit_task(sp, "pids", "pids.max", cfg.pids, pid) != 0) {
		slurm_error("slurmkit_sandbox: cannot limit the task's processes: %m");
		return ESPANK_ERROR;
	}
	if (cfg.memory_mib > 0 && limit_task(sp, "memory", "memory.limit_in_bytes", cfg.memory_mib * 1024L * 1024L, pid) != 0) {
		slurm_error("slurmkit_sandbox: cannot limit the task's memory: %m");
		return ESPANK_ERROR;
	}
	return ESPANK_SUCCESS;
}

/* As root, once the task has exited: its groups go (whatever of it remains is killed first). */
int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	if (!cfg.sandboxed)
		return ESPANK_SUCCESS;
	const char *controllers[] = { "pids", "memory", NULL };
	for (int i = 0; controllers[i]; i++) {
		char dir[PATH_MAX], procs[PATH_MAX + 16];
		task_cgroup(dir, sizeof dir, controllers[i], sp);
		snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
		for (int tries = 0; tries < 50 && rmdir(dir) != 0 && errno == EBUSY; tries++) {
			FILE *f = fopen(procs, "r");
			int p;
			while (f && fscanf(f, "%d", &p) == 1)
				kill(p, SIGKILL);
			if (f)
				fclose(f);
			usleep(20000);
		}
	}
	return ESPANK_SUCCESS;
}

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

/* perf=no: perf_event_open fails with EACCES for the task and all it starts; no_new_privs, as seccomp needs without root. */
static int forbid_perf(void)
{
#ifdef NATIVE_ARCH
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		/* x32 calls carry the native arch with this bit set in their number. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof filter / sizeof filter[0], .filter = filter };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* As the job's user, just before the task would be executed: execute it in bwrap instead. */
int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	if (!cfg.sandboxed)
		return ESPANK_SUCCESS;
	char **argv, **envv;
	int argc;
	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_ENV, &envv) != ESPANK_SUCCESS)
		return ESPANK_ERROR;
	struct passwd *pw = getpwuid(getuid());
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		snprintf(cwd, sizeof cwd, "/");
	const char *args[MAX_ARGS + 3 * MAX_WRITABLE];
	int n = 0;
	args[n++] = "/usr/bin/bwrap";
	args[n++] = "--unshare-user";
	args[n++] = "--unshare-pid";
	args[n++] = "--unshare-ipc";
	args[n++] = "--unshare-uts";
	if (cfg.no_network)
		args[n++] = "--unshare-net";
	/* No namespaces of its own inside (nothing to mount with), no terminal injection, gone with its step. */
	args[n++] = "--disable-userns";
	if (!isatty(0))
		args[n++] = "--new-session";
	args[n++] = "--die-with-parent";
	args[n++] = "--ro-bind";
	args[n++] = "/";
	args[n++] = "/";
	args[n++] = "--dev";
	args[n++] = "/dev";
	args[n++] = "--proc";
	args[n++] = "/proc";
	args[n++] = "--tmpfs";
	args[n++] = "/tmp";
	args[n++] = "--tmpfs";
	args[n++] = "/dev/shm";
	for (int i = 0; hidden[i]; i++) {
		if (access(hidden[i], F_OK) == 0 || errno == EACCES) {
			args[n++] = "--tmpfs";
			args[n++] = hidden[i];
		}
	}
	/* A batch step's script lives in slurmd's spool, hidden above: that file comes back, read-only. */
	if (argc > 0 && strncmp(argv[0], "/var/lib/slurm/", 15) == 0) {
		args[n++] = "--ro-bind";
		args[n++] = argv[0];
		args[n++] = argv[0];
	}
	const char *home = pw ? pw->pw_dir : NULL;
	if (home && strcmp(home, "/") != 0) {
		args[n++] = "--bind";
		args[n++] = home;
		args[n++] = home;
	}
	for (int i = 0; i < cfg.n_writable; i++) {
		if (access(cfg.writable[i], F_OK) != 0)
			continue;
		args[n++] = "--bind";
		args[n++] = cfg.writable[i];
		args[n++] = cfg.writable[i];
	}
	args[n++] = "--chdir";
	args[n++] = cwd;
	args[n++] = "--";
	char **full = calloc(n + argc + 1, sizeof(char *));
	if (!full)
		return ESPANK_ERROR;
	for (int i = 0; i < n; i++)
		full[i] = (char *)args[i];
	for (int i = 0; i < argc; i++)
		full[n + i] = argv[i];
	full[n + argc] = NULL;
	if (cfg.no_perf && forbid_perf() != 0) {
		slurm_error("slurmkit_sandbox: cannot forbid performance counters: %m");
		return ESPANK_ERROR;
	}
	execve(full[0], full, envv);
	slurm_error("slurmkit_sandbox: cannot run %s: %m", full[0]);
	return ESPANK_ERROR;
}
