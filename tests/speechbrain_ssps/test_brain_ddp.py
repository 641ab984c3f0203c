"""SSLBrain across 2 CPU processes equals one process on the global batch.

Each rank holds one half of every global batch. With the modules in eval
mode (so BatchNorm does not depend on how the batch is split), the mean of
the ranks' losses must equal the single-process loss, SSPS's state must be
bit-identical on both ranks, and equal (to float tolerance) to the
single-process state — SSPS active included, because its draws are sliced
from one global draw.
"""

import pytest
import speechbrain as sb
import torch
from gloo_ranks import run_on_ranks
from test_brain import GLOBAL, LOCAL, REF, make_brain

N_GLOBAL_BATCH = 8


def _item(i):
    gen = torch.Generator().manual_seed(1000 + i)
    item = {"id": f"u{i}", "index": i}
    for key, n in zip(
        ("view_0", "view_1", "view_2", "ref"), (GLOBAL, GLOBAL, LOCAL, REF)
    ):
        item[key] = torch.randn(n, generator=gen) / 10
    return item


def _protocol(rank, world, framework):
    from speechbrain.dataio.batch import PaddedBatch

    brain = make_brain(framework, with_ssps=True)
    for module in brain.modules.values():
        module.eval()
    per_rank = N_GLOBAL_BATCH // world
    losses = []
    schedule = [
        (1, range(0, 8)),
        (1, range(8, 16)),
        (2, range(0, 8)),
        (2, range(8, 16)),
    ]
    for epoch, glob in schedule:
        if epoch != brain._epoch:
            brain.on_stage_start(sb.Stage.TRAIN, epoch)
        mine = list(glob)[rank * per_rank : (rank + 1) * per_rank]
        batch = PaddedBatch([_item(i) for i in mine])
        with torch.no_grad():
            pred = brain.compute_forward(batch, sb.Stage.TRAIN)
            losses.append(
                float(brain.compute_objectives(pred, batch, sb.Stage.TRAIN))
            )
    ssps = brain.modules["ssps"]
    return {
        "losses": losses,
        "state": {k: v.clone() for k, v in ssps.state_dict().items()},
        "coverage": ssps.metrics()["coverage"],
    }


@pytest.mark.parametrize("framework", ["simclr", "dino"])
def test_two_processes_match_one_process(framework, tmp_path):
    r0, r1 = run_on_ranks(_protocol, tmp_path, framework)
    torch.set_num_threads(1)
    single = _protocol(0, 1, framework)
    # SSPS queues and clustering: bit-identical on both ranks.
    for name, value in r0["state"].items():
        assert torch.equal(value, r1["state"][name]), name
    assert r0["coverage"] == r1["coverage"] == single["coverage"] > 0
    # Same global batch: mean of the ranks' losses = single-process loss.
    for a, b, ref in zip(r0["losses"], r1["losses"], single["losses"]):
        assert (a + b) / 2 == pytest.approx(ref, rel=1e-4, abs=1e-5)
    for name, value in single["state"].items():
        if value.is_floating_point():
            assert torch.allclose(value, r0["state"][name], atol=1e-5), name
        else:
            assert torch.equal(value, r0["state"][name]), name
