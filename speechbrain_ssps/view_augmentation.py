"""The augmentation of each SSL training view (MUSAN noise, RIRs, ...).

Each view of each step gets at most one augmentation, chosen from the
run's list with probability ``prob``. The choice is a pure function of
(seed, epoch, step, view), so a resumed run makes the same choices; the
augmentations' own draws (noise file, SNR, RIR) use torch's RNG.

Example
-------
>>> import torch
>>> double = ViewAugmenter([lambda x: 2 * x], seed=0)
>>> double(torch.ones(2, 3), epoch=1, step=0, view=0).sum().item()
12.0
>>> ViewAugmenter([], seed=0)(torch.ones(2, 3), 1, 0, 0).sum().item()
6.0
"""

from __future__ import annotations

import inspect
import random
from typing import Callable, Sequence

import torch


def _takes_lengths(augmentation: Callable) -> bool:
    """Whether ``augmentation`` is called as ``aug(wavs, lengths)``."""
    forward = getattr(augmentation, "forward", augmentation)
    return len(inspect.signature(forward).parameters) >= 2


class ViewAugmenter:
    """Applies one seeded choice of augmentation to a batch of views.

    Arguments
    ---------
    augmentations : sequence of callables
        E.g. SpeechBrain's ``AddNoise`` / ``AddReverb``; called as
        ``aug(wavs, lengths)`` when they take two arguments, else
        ``aug(wavs)``. Empty: views pass unchanged.
    seed : int
        The run's seed.
    prob : float
        Probability that a view is augmented at all.
    """

    def __init__(
        self, augmentations: Sequence[Callable], seed: int, prob: float = 1.0
    ):
        self.augmentations = [
            (aug, _takes_lengths(aug)) for aug in augmentations
        ]
        self.seed = int(seed)
        self.prob = float(prob)

    def __bool__(self) -> bool:
        return bool(self.augmentations)

    def __call__(
        self, wavs: torch.Tensor, epoch: int, step: int, view: int
    ) -> torch.Tensor:
        """``wavs`` [B, T] with this view's augmentation (or unchanged)."""
        if not self.augmentations:
            return wavs
        rng = random.Random(hash((self.seed, epoch, step, view)))
        if rng.random() >= self.prob:
            return wavs
        aug, takes_lengths = rng.choice(self.augmentations)
        lengths = torch.ones(wavs.shape[0], device=wavs.device)
        out = aug(wavs, lengths) if takes_lengths else aug(wavs)
        return out[:, : wavs.shape[1]]
