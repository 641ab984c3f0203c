"""Reliability of the recipe: kill -9 and resume, determinism, 2-process DDP.

The runs go through ``probe_train.py``, which records each step's loss and a
SHA-1 of the SSPS state (and can SIGKILL the run after a given step).
"""

import json
import os
import sys

import pytest
from recipe_helpers import run_script, tiny_args

PROBE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "probe_train.py"
)
STEPS_PER_EPOCH = 6  # 24 training utterances, batch 4


def _records(out, rank=0):
    with open(os.path.join(out, f"probe_rank{rank}.jsonl")) as f:
        return [json.loads(line) for line in f]


def _train(yaml, corpus, out, epochs, start, extra=(), **kwargs):
    overrides = {}
    for arg in [
        f"--data_folder={corpus}",
        f"--output_folder={out}",
        f"--number_of_epochs={epochs}",
        *([f"--ssps_start_epoch={start}"] if start else []),
        *tiny_args(yaml),
        *extra,  # wins over the defaults above
    ]:
        overrides[arg.split("=")[0]] = arg
    args = [PROBE, "train.py", f"hparams/{yaml}", *overrides.values()]
    return run_script(args, **kwargs)


# Shared settings: (yaml, epochs, ssps_start_epoch), intra-epoch checkpoints
# after every step (they must not change training).
RUNS = {
    "simclr": ("simclr_ssps.yaml", 4, 3),  # 24 steps, SSPS from step 13
    "dino": ("dino_ssps.yaml", 2, 2),
}
CKPT_EVERY_STEP = ["--ckpt_interval_steps=1"]


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    """Records of one uninterrupted run per framework (made on demand)."""
    cache = {}

    def get(name):
        if name not in cache:
            yaml, epochs, start = RUNS[name]
            out = str(tmp_path_factory.mktemp(f"full_{name}"))
            _train(yaml, corpus, out, epochs, start, CKPT_EVERY_STEP)
            cache[name] = _records(out)
        return cache[name]

    return get


@pytest.mark.parametrize(
    "name, kill_after",
    [
        ("simclr", 2),  # during a plain epoch
        ("dino", STEPS_PER_EPOCH + 2),  # during an SSPS epoch
    ],
)
def test_kill_and_resume_matches_uninterrupted_run(
    name, kill_after, uninterrupted, corpus, tmp_path
):
    yaml, epochs, start = RUNS[name]
    killed = str(tmp_path / "killed")
    result = _train(
        yaml,
        corpus,
        killed,
        epochs,
        start,
        CKPT_EVERY_STEP,
        check=False,
        env={"PROBE_KILL_AFTER": str(kill_after)},
    )
    assert result.returncode == -9  # really killed
    assert len(_records(killed)) == kill_after
    _train(yaml, corpus, killed, epochs, start, CKPT_EVERY_STEP)  # again

    expected = {(r["epoch"], r["step"]): r for r in uninterrupted(name)}
    resumed = {}
    for r in _records(killed):  # the latest record of each step wins
        resumed[(r["epoch"], r["step"])] = r
    assert resumed.keys() == expected.keys()
    for key, record in expected.items():
        # Exact: crops, sampler, SSPS draws and schedules are restored or
        # pure functions of (seed, epoch, step, utterance).
        assert resumed[key]["loss"] == record["loss"], key
        assert resumed[key]["ssps"] == record["ssps"], key
    with open(os.path.join(killed, "train_log.txt")) as f:
        assert len([ln for ln in f if ln.startswith("epoch:")]) == epochs


def test_same_seed_same_first_20_losses(uninterrupted, corpus, tmp_path):
    yaml, epochs, start = RUNS["simclr"]
    out = str(tmp_path / "again")
    _train(yaml, corpus, out, epochs, start, CKPT_EVERY_STEP)
    a, b = uninterrupted("simclr"), _records(out)
    assert len(a) >= 20
    # Tolerance 0: same machine, same thread count, SSPS active from step 13.
    assert [r["loss"] for r in a[:20]] == [r["loss"] for r in b[:20]]
    assert [r["ssps"] for r in a[:20]] == [r["ssps"] for r in b[:20]]


def test_two_process_ddp_keeps_ssps_identical(corpus, tmp_path):
    out = str(tmp_path / "ddp")
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
    ]
    _train(
        "dino_ssps.yaml",
        corpus,
        out,
        2,
        2,
        ["--batch_size=2", "--distributed_backend=gloo"],
        launcher=launcher,
    )
    r0, r1 = _records(out, 0), _records(out, 1)
    assert len(r0) == len(r1) == STEPS_PER_EPOCH * 2
    for a, b in zip(r0, r1):
        assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])
        assert a["ssps"] == b["ssps"]  # queues, assignments: bit-identical
    # Only rank 0 logged and saved: one line per epoch, one set of ckpts.
    with open(os.path.join(out, "train_log.txt")) as f:
        assert len([ln for ln in f if ln.startswith("epoch:")]) == 2
    with open(os.path.join(out, "train_log.txt")) as f:
        assert "coverage" in f.read()
    ckpts = [
        d
        for d in os.listdir(os.path.join(out, "save"))
        if d.startswith("CKPT+")
    ]
    assert ckpts


def test_continue_plain_dino_run_with_ssps(corpus, tmp_path):
    plain, ssps = str(tmp_path / "plain"), str(tmp_path / "ssps")
    _train("dino.yaml", corpus, plain, 1, None)
    _train(
        "dino_ssps.yaml",
        corpus,
        ssps,
        3,
        3,
        [f"--continue_from={plain}/save"],
    )
    with open(os.path.join(ssps, "train_log.txt")) as f:
        epochs = [ln for ln in f if ln.startswith("epoch:")]
    # Epoch 1 came from the plain run: this run trained epochs 2 and 3,
    # filling the queues in 2 and swapping positives in 3.
    assert [ln.split(",")[0] for ln in epochs] == ["epoch: 2", "epoch: 3"]
    assert "coverage: 0.0000e+00" in epochs[0]
    assert "coverage: 0.0000e+00" not in epochs[1]


def test_file_going_bad_during_training_keeps_last_checkpoint(corpus, tmp_path):
    import shutil

    import torch

    data = str(tmp_path / "data")
    shutil.copytree(corpus, data)
    out = str(tmp_path / "run")
    with open(os.path.join(data, "meta", "veri_test2.txt")) as f:
        test_speakers = {ln.split()[1].split("/")[0] for ln in f}
    victim = next(
        os.path.join(root, name)
        for root, _, names in sorted(os.walk(os.path.join(data, "wav")))
        for name in sorted(names)
        if root.split(os.sep)[-2] not in test_speakers
    )
    # Deleted after the last step of epoch 1: epoch 2 cannot read it.
    result = _train(
        "simclr.yaml",
        data,
        out,
        2,
        None,
        check=False,
        env={"PROBE_DELETE_AFTER": f"{STEPS_PER_EPOCH}:{victim}"},
    )
    assert result.returncode != 0
    assert victim in result.stdout + result.stderr
    save = os.path.join(out, "save")
    ckpts = [d for d in os.listdir(save) if d.startswith("CKPT+")]
    assert len(ckpts) == 1
    state = torch.load(
        os.path.join(save, ckpts[0], "embedding_model.ckpt"),
        weights_only=True,
    )
    assert state
    # Put the file back: the same command resumes and finishes epoch 2.
    shutil.copy(os.path.join(corpus, os.path.relpath(victim, data)), victim)
    _train("simclr.yaml", data, out, 2, None)
    with open(os.path.join(out, "train_log.txt")) as f:
        assert len([ln for ln in f if ln.startswith("epoch:")]) == 2


def test_continue_plain_run_with_a_fill_pass_starts_at_the_ssps_epoch(
    corpus, tmp_path
):
    plain, ssps = str(tmp_path / "plain"), str(tmp_path / "ssps")
    _train("simclr.yaml", corpus, plain, 2, None)
    result = _train(
        "simclr_ssps.yaml",
        corpus,
        ssps,
        3,
        3,
        [f"--continue_from={plain}/save", "--ssps_fill=pass"],
    )
    assert "(epoch 2)" in result.stdout + result.stderr
    with open(os.path.join(ssps, "train_log.txt")) as f:
        epochs = [ln for ln in f if ln.startswith("epoch:")]
    # The plain run's epoch 2 is the epoch before SSPS: the pass at the
    # start of epoch 3 fills the queues and epoch 3 swaps positives.
    assert [ln.split(",")[0] for ln in epochs] == ["epoch: 3"]
    assert "coverage: 0.0000e+00" not in epochs[0]
