"""Tests of SSLBrain: reference forward, swap, optimisation rules, training."""

import functools

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from speechbrain_ssps.brain import SSLBrain
from speechbrain_ssps.heads import DINOHead
from speechbrain_ssps.losses import DINOLoss, NTXentLoss
from speechbrain_ssps.param_groups import split_decay_groups
from speechbrain_ssps.ssps import SSPS

N_UTT, BATCH, SR = 16, 8, 16000
GLOBAL, LOCAL, REF = 4000, 2400, 4800


def _ecapa():
    return ECAPA_TDNN(
        20,
        channels=[16, 16, 16, 16, 48],
        lin_neurons=24,
        attention_channels=8,
        se_channels=8,
    )


def _head():
    return DINOHead(24, out_dim=64, hidden_dim=32, bottleneck_dim=16)


def make_brain(framework, with_ssps, **extra):
    torch.manual_seed(0)
    modules = {
        "compute_features": Fbank(n_mels=20),
        "mean_var_norm": InputNormalization(
            norm_type="sentence", std_norm=False
        ),
        "embedding_model": _ecapa(),
    }
    hparams = {
        "framework": framework,
        "num_global_views": 2,
        "schedule_epochs": 4,
        "momentum_teacher": 0.9,
        "momentum_teacher_end": 1.0,
        "seed": 0,
    }
    if framework == "dino":
        modules.update(
            head=_head(),
            teacher_model=_ecapa(),
            teacher_head=_head(),
            ssl_loss=DINOLoss(64, n_global=2, n_local=1),
        )
        hparams.update(
            num_local_views=1,
            lr=0.05,
            lr_final=0.05,
            weight_decay=1e-4,
            clip_grad=3.0,
            freeze_last_layer=1,
        )
        opt_class = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
        pos_dim, views = 16, 2
    else:
        modules["ssl_loss"] = NTXentLoss(temperature=0.1)
        hparams.update(
            num_local_views=0,
            lr=1e-3,
            lr_schedule="step",
            lr_decay_factor=0.95,
            lr_decay_every=5,
        )
        opt_class = functools.partial(torch.optim.Adam, lr=1e-3)
        pos_dim, views = 24, 1
    if with_ssps:
        modules["ssps"] = SSPS(
            N_UTT,
            24,
            pos_dim,
            pos_views=views,
            queue_size=N_UTT,
            num_clusters=4,
            sampling="scs",
            start_epoch=2,
        )
    hparams.update(extra)
    brain = SSLBrain(
        modules=modules,
        opt_class=opt_class,
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    brain.steps_per_epoch = N_UTT // BATCH
    brain.on_fit_start()
    return brain


def make_batch(indices, seed=0):
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in indices:
        # Each "utterance" is a noise with its own colour, so that views of
        # the same utterance share something to learn from.
        colour = torch.randn(32, generator=torch.Generator().manual_seed(i))
        item = {"id": f"u{i}", "index": i}
        for k, n in enumerate((GLOBAL, GLOBAL, LOCAL, REF)):
            noise = torch.randn(n + 31, generator=gen)
            wav = torch.nn.functional.conv1d(
                noise.view(1, 1, -1), colour.view(1, 1, -1)
            ).view(-1)
            item[("view_0", "view_1", "view_2", "ref")[k]] = wav / 10
        items.append(item)
    return PaddedBatch(items)


def _bn_state(model):
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if "running" in k or "num_batches" in k
    }


@pytest.mark.parametrize("framework", ["dino", "simclr"])
def test_reference_forward_leaves_batchnorm_untouched(framework):
    brain = make_brain(framework, with_ssps=True)
    name = "teacher_model" if framework == "dino" else "embedding_model"
    model = brain.modules[name]
    model.train()
    before = _bn_state(model)
    y = brain.encode_reference(make_batch(range(4)).ref.data)
    assert y.shape == (4, 24)
    assert not y.requires_grad
    assert model.training  # mode restored
    for key, value in _bn_state(model).items():
        assert torch.equal(value, before[key]), key
    # Eval mode really was used: a train-mode forward would differ.
    with torch.no_grad():
        train_mode = brain.encode(model, make_batch(range(4)).ref.data)
    assert not torch.allclose(train_mode, y)


def test_dino_swap_touches_exactly_the_sampled_anchors():
    brain = make_brain("dino", with_ssps=True)
    ssps = brain.modules["ssps"]
    ssps.on_epoch_start(1)
    for idx in (range(0, 8), range(8, 16)):
        batch = make_batch(idx)
        with torch.no_grad():
            pred = brain.compute_forward(batch, sb.Stage.TRAIN)
        brain.framework.targets(brain, pred, batch.index)
    stored = ssps.pos_queue.clone()
    # Utterances 0 and 1 are alone in their cluster: no candidate.
    assignments = torch.tensor([0, 1] + [2, 3] * 7)
    ssps.epoch = 2
    ssps.set_clusters(assignments, torch.eye(4, 24))
    batch = make_batch(range(4))
    with torch.no_grad():
        pred = brain.compute_forward(batch, sb.Stage.TRAIN)
        ssps.num_draws = 0
        targets = brain.framework.targets(brain, pred, batch.index)
    ssps.num_draws = 0
    ssps.epoch = 2
    pos = ssps.sample(batch.index)
    assert pos[:2].tolist() == [-1, -1]
    assert (pos[2:] >= 0).all()
    t = targets.view(2, 4, -1)
    ordinary = brain.modules.teacher_head.prototypes(
        pred["teacher_bottleneck"]
    ).view(2, 4, -1)
    assert torch.equal(t[:, :2], ordinary[:, :2])
    slots = ssps._last_slots
    for j in (2, 3):
        expected = brain.modules.teacher_head.prototypes(stored[slots[j]])
        assert torch.allclose(t[:, j], expected, atol=1e-6)
        assert not torch.allclose(t[:, j], ordinary[:, j])


def test_optimizer_groups_and_dino_step_rules():
    brain = make_brain("dino", with_ssps=False)
    groups = brain.optimizer.param_groups
    assert groups[1]["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in groups[0]["params"])
    # No teacher parameter is optimised.
    teacher = {id(p) for p in brain.modules.teacher_model.parameters()}
    assert not teacher & {id(p) for g in groups for p in g["params"]}
    head = brain.modules.head
    last = [p.clone() for p in head.last_layer_parameters]
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    t_before = [p.clone() for p in brain.modules.teacher_model.parameters()]
    s_before = [p.clone() for p in brain.modules.embedding_model.parameters()]
    brain.fit_batch(make_batch(range(8)))
    # Epoch 1: last layer frozen; the rest moved.
    for p, q in zip(head.last_layer_parameters, last):
        assert torch.equal(p, q)
    s_after = list(brain.modules.embedding_model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(s_after, s_before))
    # EMA: teacher = m * teacher + (1 - m) * student, m at step 0.
    m = brain.teacher_momentum(0)
    for t0, t1, s1 in zip(
        t_before, brain.modules.teacher_model.parameters(), s_after
    ):
        assert torch.allclose(t1, m * t0 + (1 - m) * s1, atol=1e-6)
    assert brain.optimizer_step == 1
    # Epoch 2: the last layer trains.
    brain.on_stage_start(sb.Stage.TRAIN, 2)
    brain.fit_batch(make_batch(range(8)))
    assert any(
        not torch.equal(p, q) for p, q in zip(head.last_layer_parameters, last)
    )


def test_per_parameter_clipping_in_optimizers_step():
    brain = make_brain("dino", with_ssps=False)
    brain.on_stage_start(sb.Stage.TRAIN, 2)
    params = [p for g in brain.optimizer.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        p.grad = torch.full_like(p, 10.0 if i % 2 else 1e-4)
    small = [p.grad.clone() for i, p in enumerate(params) if i % 2 == 0]
    seen = []
    orig_step = brain.optimizer.step

    def spy(*args, **kwargs):
        seen.extend(p.grad.clone() for p in params)
        return orig_step(*args, **kwargs)

    brain.optimizer.step = spy
    brain.optimizers_step()
    for g in seen:
        assert g.norm() <= 3.0 + 1e-4
    assert all(torch.equal(a, b) for a, b in zip(seen[0::2], small))


@pytest.mark.parametrize("framework", ["dino", "simclr"])
@pytest.mark.parametrize("with_ssps", [False, True])
def test_few_steps_lower_the_loss(framework, with_ssps):
    brain = make_brain(framework, with_ssps)
    batches = [make_batch(range(0, 8), 1), make_batch(range(8, 16), 2)]
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    for b in batches:  # epoch 1 fills SSPS's queues
        brain.fit_batch(b)
    brain.on_stage_start(sb.Stage.TRAIN, 2)  # SSPS active from here
    losses = []
    for _ in range(12):
        if with_ssps:
            # Same draws every step: each anchor keeps its pseudo-positive
            # utterance, so the task is fixed and the loss must go down.
            brain.modules["ssps"].num_draws = 0
        losses.append(float(brain.fit_batch(batches[0])))
    if with_ssps:
        assert brain.modules["ssps"].metrics()["coverage"] > 0
    assert sum(losses[-3:]) < sum(losses[:3])


def test_split_decay_groups_skips_frozen():
    lin = torch.nn.Linear(3, 2)
    lin.bias.requires_grad_(False)
    decay, no_decay = split_decay_groups([lin])
    assert decay["params"] == [lin.weight]
    assert no_decay["params"] == []


def test_unknown_framework():
    with pytest.raises(ValueError, match="framework"):
        SSLBrain(
            modules={"m": torch.nn.Linear(1, 1)},
            hparams={"framework": "byol"},
            run_opts={"device": "cpu"},
        )
