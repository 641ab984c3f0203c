"""Self-supervised frameworks that :class:`SSLBrain` trains.

A yaml names its framework with ``framework: !new:...`` (for example
``!new:speechbrain_ssps.frameworks.DINO``); yamls that give the short name
(``framework: dino``) still work, the object being built from the run's
hyperparameters. See :mod:`speechbrain_ssps.frameworks.base` for what a
framework provides.

Example
-------
>>> resolve_framework("simclr", hparams=None)
SimCLR(embedding_dim=None)
"""

from __future__ import annotations

from speechbrain_ssps.frameworks.base import Framework, unwrap
from speechbrain_ssps.frameworks.dino import DINO
from speechbrain_ssps.frameworks.moco import MoCo
from speechbrain_ssps.frameworks.simclr import SimCLR
from speechbrain_ssps.frameworks.swav import SwAV
from speechbrain_ssps.frameworks.vicreg import VICReg

#: The frameworks a yaml may name by their short name (the older form;
#: MoCo, VICReg and SwAV are built with ``!new:`` only).
FRAMEWORKS = {cls.name: cls for cls in (DINO, SimCLR)}


def resolve_framework(spec, hparams) -> Framework:
    """The framework object of a run.

    Arguments
    ---------
    spec : Framework or str
        The yaml's ``framework`` entry: an object, or a short name from
        :data:`FRAMEWORKS`.
    hparams : object
        The run's hyperparameters (read by ``from_hparams`` for a name).

    Returns
    -------
    Framework

    Raises
    ------
    ValueError
        For anything else, naming the known frameworks.
    """
    if isinstance(spec, Framework):
        return spec
    if isinstance(spec, str) and spec in FRAMEWORKS:
        return FRAMEWORKS[spec].from_hparams(hparams)
    raise ValueError(
        f"framework must be a Framework object or one of "
        f"{tuple(FRAMEWORKS)}, got {spec!r}"
    )


__all__ = [
    "DINO",
    "FRAMEWORKS",
    "Framework",
    "MoCo",
    "SimCLR",
    "SwAV",
    "VICReg",
    "resolve_framework",
    "unwrap",
]
