"""Teacher (momentum encoder) and DINO gradient helpers.

Mirrors reference DINO (facebookresearch/dino: the EMA step in
``main_dino.train_one_epoch``, ``utils.clip_gradients`` and
``utils.cancel_gradients_last_layer``) and sslsv (``_BaseMomentumMethod``,
``DINO.on_after_backward``), vectorised with ``torch._foreach_*`` ops.

Buffers: like both references, the EMA only touches **parameters**. The
teacher's buffers (BatchNorm running statistics) are its own: they are copied
from the student once by ``copy_student_to_teacher`` and afterwards updated
only by the teacher's own forward passes in train mode.

Epoch convention: SpeechBrain counts epochs from 1, so
``cancel_last_layer_gradients_`` takes the 1-based epoch and drops the
last-layer gradients while ``epoch <= freeze_epochs``. Reference DINO's
``epoch < freeze_last_layer`` with 0-based epochs is the same rule.
"""

from typing import Dict, Iterable, List, Tuple, Union

import torch
from torch import nn

ParamsArg = Union[nn.Module, Iterable[torch.Tensor]]


def _unwrap(module: nn.Module) -> nn.Module:
    """Return the module inside DDP / DataParallel / torch.compile wrappers."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    if isinstance(module, wrappers):
        module = module.module
    return getattr(module, "_orig_mod", module)


def _as_list(parameters: ParamsArg) -> List[torch.Tensor]:
    if isinstance(parameters, nn.Module):
        return list(parameters.parameters())
    if isinstance(parameters, torch.Tensor):
        return [parameters]
    return list(parameters)


def copy_student_to_teacher(student: nn.Module, teacher: nn.Module) -> None:
    """Load the student's state into the teacher and freeze the teacher.

    Arguments
    ---------
    student : torch.nn.Module
        Source module (DDP and ``torch.compile`` wrappers are unwrapped).
    teacher : torch.nn.Module
        Module of the same architecture; its parameters and buffers are
        overwritten (strict ``load_state_dict``) and its parameters get
        ``requires_grad=False``.

    Example
    -------
    >>> student, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> copy_student_to_teacher(student, teacher)
    >>> torch.equal(student.weight, teacher.weight)
    True
    >>> teacher.weight.requires_grad
    False
    """
    teacher = _unwrap(teacher)
    teacher.load_state_dict(_unwrap(student).state_dict(), strict=True)
    for p in teacher.parameters():
        p.requires_grad_(False)


@torch.no_grad()
def ema_update_(
    teacher: nn.Module,
    student: nn.Module,
    momentum: float,
) -> None:
    """EMA step of the teacher: ``t <- momentum * t + (1 - momentum) * s``.

    Applied to every parameter pair (matched by name), frozen ones included,
    as in reference DINO. Buffers are left alone.

    Arguments
    ---------
    teacher : torch.nn.Module
        Momentum module, updated in place.
    student : torch.nn.Module
        Trained module (DDP and ``torch.compile`` wrappers are unwrapped).
    momentum : float
        EMA momentum in [0, 1]; 1 keeps the teacher, 0 copies the student.

    Example
    -------
    >>> student, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> ema_update_(teacher, student, momentum=0.0)
    >>> torch.equal(student.weight, teacher.weight)
    True
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    teacher, student = _unwrap(teacher), _unwrap(student)
    t_named = dict(teacher.named_parameters())
    s_named = dict(student.named_parameters())
    if t_named.keys() != s_named.keys():
        missing = sorted(set(s_named) ^ set(t_named))[:5]
        raise ValueError(
            "teacher and student parameters differ (first mismatching "
            f"names: {missing})"
        )
    names = list(s_named)
    t_params = [t_named[n] for n in names]
    s_params = [s_named[n].detach() for n in names]
    if t_params:
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - momentum)


@torch.no_grad()
def clip_gradients_per_parameter_(
    parameters: ParamsArg, max_norm: float
) -> List[float]:
    """Clip each parameter's gradient to ``max_norm`` on its own (DINO).

    Every gradient whose L2 norm exceeds ``max_norm`` is scaled by
    ``max_norm / (norm + 1e-6)``; the others are left unchanged.

    Arguments
    ---------
    parameters : torch.nn.Module or iterable of torch.Tensor
        Parameters whose ``.grad`` is clipped in place (those without a
        gradient are skipped).
    max_norm : float
        Largest allowed norm per parameter (> 0).

    Returns
    -------
    list of float
        The gradient norms before clipping, one per parameter with a
        gradient, in order.

    Example
    -------
    >>> w = torch.zeros(4, requires_grad=True)
    >>> w.grad = torch.full((4,), 10.0)
    >>> clip_gradients_per_parameter_([w], max_norm=2.0)
    [20.0]
    >>> round(float(w.grad.norm()), 4)
    2.0
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return []
    # Group by (device, dtype) so each group is one fused foreach call.
    groups: Dict[Tuple[torch.device, torch.dtype], List[int]] = {}
    for i, g in enumerate(grads):
        groups.setdefault((g.device, g.dtype), []).append(i)
    norms = [0.0] * len(grads)
    for idx in groups.values():
        group = [grads[i] for i in idx]
        group_norms = torch.stack(torch._foreach_norm(group))
        coefs = (max_norm / (group_norms + 1e-6)).clamp_(max=1.0)
        torch._foreach_mul_(group, list(coefs.unbind()))
        for i, n in zip(idx, group_norms.float().tolist()):
            norms[i] = n
    return norms


def cancel_last_layer_gradients_(
    parameters: ParamsArg, epoch: int, freeze_epochs: int
) -> bool:
    """Drop the last layer's gradients during the first ``freeze_epochs``.

    Arguments
    ---------
    parameters : torch.nn.Module or iterable of torch.Tensor
        The last-layer parameters (e.g. ``DINOHead.last_layer_parameters``).
    epoch : int
        **1-based** epoch (SpeechBrain's ``epoch_counter.current``).
    freeze_epochs : int
        Number of epochs during which the layer is frozen (1 in DINO).

    Returns
    -------
    bool
        True if the gradients were cancelled.

    Example
    -------
    >>> w = torch.zeros(2, requires_grad=True)
    >>> w.grad = torch.ones(2)
    >>> cancel_last_layer_gradients_([w], epoch=2, freeze_epochs=1)
    False
    >>> cancel_last_layer_gradients_([w], epoch=1, freeze_epochs=1)
    True
    >>> w.grad is None
    True
    """
    if epoch < 1:
        raise ValueError(f"epoch is 1-based and must be >= 1, got {epoch}")
    if epoch > freeze_epochs:
        return False
    for p in _as_list(parameters):
        p.grad = None
    return True
