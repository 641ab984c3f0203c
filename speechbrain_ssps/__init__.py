"""SSPS (Self-Supervised Positive Sampling) for SpeechBrain.

Self-supervised speaker-verification training with DINO or SimCLR on
SpeechBrain's ECAPA-TDNN, with the positive of each anchor optionally drawn
from another utterance that the model believes is the same speaker
(Lepage & Dehak, Interspeech 2025, arXiv 2505.14561).

The classes users build on are importable from the package itself; each is
loaded on first use, so ``import speechbrain_ssps`` stays cheap.

Example
-------
>>> import speechbrain_ssps
>>> from speechbrain_ssps.ssps import SSPS
>>> speechbrain_ssps.SSPS is SSPS
True
>>> sorted(speechbrain_ssps.__all__)[:3]
['DINO', 'DINOHead', 'DINOLoss']
"""

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC = {
    "SSPS": "speechbrain_ssps.ssps",
    "SSPSOptionError": "speechbrain_ssps.ssps",
    "label_oracle": "speechbrain_ssps.ssps",
    "SSLBrain": "speechbrain_ssps.brain",
    "DINOLoss": "speechbrain_ssps.losses",
    "NTXentLoss": "speechbrain_ssps.losses",
    "DINOHead": "speechbrain_ssps.heads",
    "SimCLRProjector": "speechbrain_ssps.heads",
    "SafeCheckpointer": "speechbrain_ssps.checkpoints",
    "Framework": "speechbrain_ssps.frameworks",
    "DINO": "speechbrain_ssps.frameworks",
    "SimCLR": "speechbrain_ssps.frameworks",
    "MoCo": "speechbrain_ssps.frameworks",
    "VICReg": "speechbrain_ssps.frameworks",
    "SwAV": "speechbrain_ssps.frameworks",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'speechbrain_ssps' has no {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
