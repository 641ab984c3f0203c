"""Optimizer parameter groups: weight decay on weights, none on biases/norms.

Authors
 * speechbrain-ssps contributors
"""

from typing import List

import torch


def split_decay_groups(modules: List[torch.nn.Module]) -> List[dict]:
    """Parameter groups as reference DINO: no weight decay on biases/norms.

    Arguments
    ---------
    modules : list of torch.nn.Module
        The trained modules.

    Returns
    -------
    list of dict
        ``[{"params": regularized}, {"params": not_regularized,
        "weight_decay": 0.0}]``; group 0 is the regularized one, the group
        whose weight decay follows the schedule.

    Example
    -------
    >>> groups = split_decay_groups([torch.nn.Linear(3, 2)])
    >>> [len(g["params"]) for g in groups]
    [1, 1]
    """
    decay, no_decay = [], []
    for module in modules:
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if name.endswith(".bias") or param.ndim <= 1:
                no_decay.append(param)
            else:
                decay.append(param)
    return [
        {"params": decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
