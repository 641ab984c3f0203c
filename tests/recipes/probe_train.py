"""Runs the recipe's train.py with probes, for the reliability tests.

Each training step appends ``{"epoch", "step", "loss", "ssps"}`` to
``<output_folder>/probe_rank<RANK>.jsonl``, where ``ssps`` is a SHA-1 of every
SSPS state tensor (queues, pointer, assignments, centroids, neighbours). With
``PROBE_KILL_AFTER=k`` the process kills itself with SIGKILL right after its
k-th step (before that step's intra-epoch checkpoint is written); with
``PROBE_DELETE_AFTER=k:path`` it deletes ``path`` after its k-th step (an
audio file going bad during training).

Usage (from the recipe folder)::

    python <this file> train.py hparams/x.yaml --data_folder=... [...]
"""

import hashlib
import json
import os
import runpy
import signal
import sys


def ssps_digest(ssps):
    """SHA-1 of SSPS's state tensors, in a fixed order."""
    digest = hashlib.sha1()
    for name, buf in sorted(ssps.state_dict().items()):
        digest.update(name.encode())
        digest.update(buf.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def install_probes():
    from speechbrain_ssps.brain import SSLBrain

    kill_after = int(os.environ.get("PROBE_KILL_AFTER", "0"))
    delete_after, _, delete_path = os.environ.get(
        "PROBE_DELETE_AFTER", "0:"
    ).partition(":")
    original = SSLBrain.on_fit_batch_end
    done = {"steps": 0}

    def probed(self, batch, outputs, loss, should_step):
        original(self, batch, outputs, loss, should_step)
        rank = int(os.environ.get("RANK", "0"))
        record = {"epoch": self._epoch, "step": self.step, "loss": float(loss)}
        if self.ssps is not None:
            record["ssps"] = ssps_digest(self.ssps)
        path = os.path.join(
            self.hparams.output_folder, f"probe_rank{rank}.jsonl"
        )
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        done["steps"] += 1
        if int(delete_after) and done["steps"] == int(delete_after):
            os.remove(delete_path)
        if kill_after and done["steps"] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    SSLBrain.on_fit_batch_end = probed


if __name__ == "__main__":
    install_probes()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
