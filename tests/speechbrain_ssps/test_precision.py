"""Mixed precision: bf16 autocast steps, float32 state, precision checks."""

import pytest
import speechbrain as sb
import torch
import torch.nn.functional as F
from test_brain import make_batch, make_brain

from speechbrain_ssps.frameworks.moco import MoCoLoss
from speechbrain_ssps.frameworks.swav import Prototypes, SwAVLoss
from speechbrain_ssps.frameworks.vicreg import VICRegLoss
from speechbrain_ssps.precision import full_precision
from speechbrain_ssps.preflight import check_precision, check_run_precision
from speechbrain_ssps.preflight.options import run_option


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _spy(obj, name, calls):
    """Wraps ``obj.name`` to record its tensor arguments' dtypes."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        calls.append(
            {
                "dtypes": [
                    a.dtype for a in args if isinstance(a, torch.Tensor)
                ],
                "autocast": torch.is_autocast_enabled("cpu"),
            }
        )
        return original(*args, **kwargs)

    setattr(obj, name, wrapper)


@pytest.mark.parametrize("framework", ["dino", "simclr"])
def test_bf16_training_steps_keep_float32_state(framework):
    brain = make_brain(framework, with_ssps=True, precision="bf16")
    assert brain.precision == "bf16"
    ssps = brain.modules["ssps"]
    loss_calls, ssps_calls, sample_calls = [], [], []
    _spy(brain.modules.ssl_loss, "forward", loss_calls)
    _spy(ssps, "update", ssps_calls)
    _spy(ssps, "sample", sample_calls)
    losses = []
    brain.on_stage_start(sb.Stage.TRAIN, 1)  # fills the queues
    for step, idx in enumerate((range(0, 8), range(8, 16)), start=1):
        brain.step = step
        losses.append(float(brain.fit_batch(make_batch(idx, step))))
    brain.on_stage_start(sb.Stage.TRAIN, 2)  # SSPS active: k-means
    for step in (1, 2):
        brain.step = step
        losses.append(float(brain.fit_batch(make_batch(range(8), 5 + step))))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert ssps.metrics()["coverage"] > 0
    # Autocast really was on: the student's outputs reach the loss in bf16.
    assert loss_calls and all(c["autocast"] for c in loss_calls)
    assert all(c["dtypes"][0] == torch.bfloat16 for c in loss_calls)
    if framework == "dino":  # the (swapped) teacher targets: float32
        assert all(c["dtypes"][1] == torch.float32 for c in loss_calls)
        center = brain.modules.ssl_loss.center
        assert center.dtype == torch.float32
        assert torch.isfinite(center).all() and center.abs().sum() > 0
    else:  # the swapped positives come back from SSPS in float32
        assert all(c["dtypes"][1] == torch.float32 for c in loss_calls)
    # SSPS ran on float32 rows with autocast off; its queues are float32.
    assert len(ssps_calls) == 4 and len(sample_calls) == 2
    assert not any(c["autocast"] for c in sample_calls)
    for call in ssps_calls:
        assert not call["autocast"]
        assert call["dtypes"][1:] == [torch.float32, torch.float32]
    for name in ("ref_queue", "pos_queue", "centroids"):
        buffer = getattr(ssps, name)
        assert buffer.dtype == torch.float32, name
        assert torch.isfinite(buffer).all(), name
    # The optimizer's parameters stay float32 (autocast casts copies).
    for group in brain.optimizer.param_groups:
        assert all(p.dtype == torch.float32 for p in group["params"])


def test_ssps_clustering_is_float32_inside_autocast():
    """A guard: SSLBrain clusters outside autocast, other callers may not."""
    brain = make_brain("simclr", with_ssps=True)
    ssps = brain.modules["ssps"]
    ssps.on_epoch_start(1)
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(16, 24, generator=gen)
    ssps.update(torch.arange(16), y, torch.randn(1, 16, 24, generator=gen))
    ssps.epoch = 2
    ssps.cluster()
    expected = ssps.centroids.clone(), ssps.assignments.clone()
    with _bf16():
        ssps.cluster()
    assert torch.equal(ssps.assignments, expected[1])
    assert torch.equal(ssps.centroids, expected[0])


def _unit(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=gen), dim=-1)


def test_framework_losses_run_in_float32_under_autocast():
    q, k = _unit(8, 16, seed=1), _unit(8, 16, seed=2)
    moco = MoCoLoss(dim=16, queue_size=32, temperature=0.2)
    vicreg = VICRegLoss()
    swav = SwAVLoss(dim=16, queue_size=0)
    protos = Prototypes(16, num_prototypes=12)
    cases = (
        (lambda: moco(q, k), "moco"),
        (lambda: vicreg(q * 3, k * 3), "vicreg"),
        (lambda: swav(q[:4], q[4:], protos, epoch=1), "swav"),
    )
    for fn, name in cases:
        full = fn()
        with _bf16():
            mixed = fn()
        assert mixed.dtype == torch.float32, name
        # The same float32 computation (bf16 products: errors of 1e-5 to
        # 1e-2 here).
        assert torch.equal(mixed, full), name


def test_full_precision_region_of_a_device():
    a = torch.ones(3, 3)
    with _bf16():
        assert (a @ a).dtype == torch.bfloat16
        with full_precision("cpu"):
            assert (a @ a).dtype == torch.float32
        assert (a @ a).dtype == torch.bfloat16


def test_precision_checks_name_the_option():
    check_precision("fp32", "cpu")
    check_precision("bf16", "cpu")
    check_precision("fp16", "cuda:0")
    check_precision("bf16", "cuda", bf16_supported=lambda: True)
    with pytest.raises(ValueError, match=r"--precision=fp16 needs a CUDA"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match=r"--eval_precision=fp16 needs"):
        check_precision("bf16", "cpu", eval_precision="fp16")
    with pytest.raises(ValueError, match=r"--precision=bf16: the CUDA"):
        check_precision("bf16", "cuda:1", bf16_supported=lambda: False)
    with pytest.raises(ValueError, match=r"--precision=fp8 is not one of"):
        check_precision("fp8", "cpu")


def test_run_precision_is_resolved_like_speechbrain():
    _, run_opts, _ = sb.parse_arguments(["x.yaml", "--precision=fp16"])
    assert run_option(run_opts, {"precision": "bf16"}, "precision", "") == (
        "fp16"
    )
    with pytest.raises(ValueError, match="--precision=fp16"):
        check_run_precision(run_opts, {"device": "cpu"})
    _, run_opts, _ = sb.parse_arguments(["x.yaml", "--device=cpu"])
    with pytest.raises(ValueError, match="--precision=fp16"):
        check_run_precision(run_opts, {"precision": "fp16"})  # yaml key
    check_run_precision(run_opts, {"precision": "bf16"})
    check_run_precision({"device": "cpu"}, {})  # a 1.1.0-style dict


def test_speechbrain_itself_refuses_fp16_on_the_cpu():
    """What the start-up check anticipates (after data preparation)."""
    with pytest.raises(ValueError, match="--precision"):
        make_brain("simclr", with_ssps=False, precision="fp16")
