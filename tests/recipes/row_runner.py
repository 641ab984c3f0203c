"""Runs recipe command lines in processes forked from a warm interpreter.

Most of a debug row's time on a CPU is ``import torch, speechbrain`` (about
5 s of CPU per process on the project machine, 4 s more while it is busy):
a server process imports them once, then forks a child per command line,
which runs ``python <script> <args>`` as a fresh ``python`` would
(``runpy`` as ``__main__``, ``sys.argv`` and ``sys.path[0]`` set, the
given working folder and environment, stdout and stderr to a log file,
the exit status returned). Used by ``test_recipe_csv.py``; POSIX only.

Protocol: one JSON request per line on stdin, ``{"argv": [...], "cwd":
..., "env": {...}, "log": path}`` (``argv[0]`` is the interpreter, as in
``subprocess``), answered by one JSON line ``{"rc": int}`` on stdout.
"""

import json
import os
import runpy
import sys
import traceback

# What a training row imports; imported once here, shared by every child.
WARM_MODULES = (
    "torch",
    "torch._dynamo",  # the optimizers import it on first construction
    "speechbrain",
    "speechbrain.core",
    "speechbrain.lobes.models.ECAPA_TDNN",
    "hyperpyyaml",
    "soundfile",
    "sklearn.metrics",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "speechbrain_ssps.brain",
    "speechbrain_ssps.frameworks",
    "speechbrain_ssps.ssps",
)


def _child(request):
    """Runs one command line in this (forked) process; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)  # the protocol's stdout is the parent's, not ours
        os.dup2(fd, 2)
        script, *args = request["argv"][1:]
        sys.argv = [script, *args]
        extra = os.environ.get("PYTHONPATH", "")
        sys.path[0:1] = [os.path.dirname(os.path.abspath(script))] + [
            p for p in extra.split(os.pathsep) if p
        ]
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
                code = 1
    except BaseException:  # report and exit, whatever happened
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve():
    """Reads requests from stdin until it closes."""
    for name in WARM_MODULES:
        __import__(name)
    protocol = sys.stdout
    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        protocol.write(json.dumps({"rc": rc}) + "\n")
        protocol.flush()


class WarmRunner:
    """The client: starts the server, runs command lines through it.

    Arguments
    ---------
    env : dict
        The server's environment (``OMP_NUM_THREADS`` must be set here:
        torch reads it at import).
    """

    def __init__(self, env):
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        ready = self.process.stdout.readline()
        if not ready:
            raise RuntimeError("the warm row runner did not start")

    def run(self, argv, cwd, env, log):
        """Runs ``argv`` (``[python, script, *args]``); its exit status."""
        request = {"argv": argv, "cwd": cwd, "env": env, "log": log}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the warm row runner died")
        return int(json.loads(answer)["rc"])

    def close(self):
        """Stops the server."""
        self.process.stdin.close()
        self.process.wait(timeout=60)


if __name__ == "__main__":
    serve()
