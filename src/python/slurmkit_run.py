"""Ship a Python function to the cluster as a Slurm job and get its result back.

    from slurmkit_run import run
    run(lambda a, b: a * b, 6, 7)                      # 42, computed on a worker
    run(experiment, data, partition="lab", timeout=300)

`run` pickles the function and its arguments with cloudpickle (so lambdas and functions of a
notebook travel too) into a new folder of the user's home, ~/.slurmkit/calls/<id>/ (the format
slurmkit's TypeScript SDK uses for `cluster.run`: call.json says what to run, result.json what
came of it), submits a job that runs this file on a worker, waits for it, and returns the
value, or raises the exception the function raised there, with the remote traceback as its cause.

The same file is the job's program: a copy of it in the call's folder, `python3 runner.py <folder>`.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import uuid

CALL_FILE = "call.json"
RESULT_FILE = "result.json"
CALL_PICKLE = "call.pkl"
RESULT_PICKLE = "result.pkl"
RUNNER_FILE = "runner.py"


class RemoteError(Exception):
    """An exception raised by the function on the node, carrying the node's traceback."""

    def __init__(self, name, message, remote_traceback, job=None):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.remote_message = message
        self.remote_traceback = remote_traceback
        self.job = job

    def __str__(self):
        where = f" (job {self.job})" if self.job else ""
        return f"{self.name}: {self.remote_message}{where}\n\nRemote traceback:\n{self.remote_traceback}"


def _calls_folder():
    return os.path.join(os.path.expanduser("~"), ".slurmkit", "calls")


def _write(path, data, mode="wb"):
    tmp = f"{path}.tmp"
    with open(tmp, mode) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run(fn, *args, partition=None, timeout=None, **kwargs):
    """Runs fn(*args, **kwargs) in a Slurm job on a worker and returns its value."""
    import cloudpickle

    folder = os.path.join(_calls_folder(), str(uuid.uuid4()))
    old = os.umask(0o077)
    try:
        os.makedirs(folder)
        _write(os.path.join(folder, CALL_PICKLE), cloudpickle.dumps((fn, args, kwargs)))
        spec = {"language": "python", "pickle": CALL_PICKLE, "name": getattr(fn, "__name__", "function")}
        _write(os.path.join(folder, CALL_FILE), json.dumps(spec).encode())
        # The job runs a copy of this file kept with the call: workers need no install of it, and a
        # sandboxed job sees the user's home.
        shutil.copyfile(os.path.abspath(__file__), os.path.join(folder, RUNNER_FILE))
    finally:
        os.umask(old)
    # The interpreter that pickled the call unpickles it (cloudpickle needs the same Python).
    script = f"#!/bin/bash\nexec {sys.executable} {os.path.join(folder, RUNNER_FILE)} {folder}\n"
    command = ["sbatch", "--parsable", f"--job-name=call-{os.path.basename(folder)[:8]}", f"--output={folder}/output.txt", f"--chdir={os.getcwd()}"]
    if partition:
        command.append(f"--partition={partition}")
    if timeout:
        command.append(f"--time={max(1, -(-int(timeout) // 60))}")
    submitted = subprocess.run(command, input=script, capture_output=True, text=True)
    if submitted.returncode != 0:
        raise RuntimeError(f"sbatch refused the call: {submitted.stderr.strip()}")
    job = submitted.stdout.strip().split(";")[0]
    _wait(folder, job, timeout)
    return _result(folder, job)


def _wait(folder, job, timeout):
    """Until the result is written (looked for every 50 ms) or the job has left the queue without one."""
    deadline = time.monotonic() + timeout if timeout else None
    result = os.path.join(folder, RESULT_FILE)
    next_queue_check = time.monotonic() + 1
    while not os.path.exists(result):
        now = time.monotonic()
        if deadline is not None and now > deadline:
            subprocess.run(["scancel", job], capture_output=True)
            raise TimeoutError(f"the call (job {job}) did not end within {timeout} s; the job was cancelled")
        if now >= next_queue_check:
            queued = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
            if queued.returncode == 0 and not queued.stdout.strip() or "Invalid job id" in queued.stderr:
                return
            next_queue_check = now + 1
        time.sleep(0.05)


def _result(folder, job):
    import cloudpickle

    path = os.path.join(folder, RESULT_FILE)
    if not os.path.exists(path):
        raise RemoteError(
            "JobFailed",
            "the job ended without a result (cancelled, out of time or memory, or its node failed); its output:",
            _tail(os.path.join(folder, "output.txt")),
            job,
        )
    with open(path) as f:
        result = json.load(f)
    if result["ok"]:
        with open(os.path.join(folder, RESULT_PICKLE), "rb") as f:
            value = cloudpickle.load(f)
        shutil.rmtree(folder, ignore_errors=True)
        return value
    error = result["error"]
    remote = RemoteError(error["name"], error["message"], error["stack"], job)
    try:
        with open(os.path.join(folder, RESULT_PICKLE), "rb") as f:
            original = cloudpickle.load(f)
    except Exception:
        raise remote from None
    raise original from remote


def _tail(path, lines=20):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _main(folder):
    """In the job: runs the call of `folder` and writes its result (atomically) beside it."""
    import cloudpickle

    with open(os.path.join(folder, CALL_PICKLE), "rb") as f:
        fn, args, kwargs = cloudpickle.load(f)
    try:
        value = fn(*args, **kwargs)
        try:
            shown = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            shown = None
        _write(os.path.join(folder, RESULT_PICKLE), cloudpickle.dumps(value))
        _write(os.path.join(folder, RESULT_FILE), json.dumps({"ok": True, "value": shown}).encode())
        return 0
    except BaseException as e:  # the call's failure is its result
        stack = traceback.format_exc()
        try:
            _write(os.path.join(folder, RESULT_PICKLE), cloudpickle.dumps(e))
        except Exception:
            pass
        error = {"name": type(e).__name__, "message": str(e), "stack": stack}
        _write(os.path.join(folder, RESULT_FILE), json.dumps({"ok": False, "error": error}).encode())
        return 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
