"""Seeding of MiniVox: one independent random stream per cell of draws.

A cell is (corpus seed, kind of draw, indices such as speaker, video and
utterance). Because every draw comes from its own cell's generator, no
file depends on the order in which speakers are synthesised, nor on the
number of worker processes.

Example
-------
>>> a = _rng(0, _TAG_VOICE, 3).random()
>>> a == _rng(0, _TAG_VOICE, 3).random() != _rng(0, _TAG_VOICE, 4).random()
True
"""

import numpy as np

# Seed-sequence tags: one independent stream per kind of draw.
_TAG_VOICE = 1
_TAG_SESSION = 2
_TAG_CHANNEL = 3
_TAG_VIDEO_ID = 4
_TAG_UTTERANCE = 5
_TAG_TRIALS = 6
# Augmentation set (augmentation.py): streams of their own, so its draws
# never repeat a corpus's voices or channels, whatever the two seeds.
_TAG_AUG_NOISE = 7
_TAG_AUG_MUSIC = 8
_TAG_AUG_SPEECH = 9
_TAG_AUG_BABBLE_VOICE = 10
_TAG_AUG_ROOM = 11
_TAG_AUG_RIR = 12


def _rng(seed: int, tag: int, *index: int) -> np.random.Generator:
    """Independent generator for one (seed, kind, speaker, ...) cell."""
    return np.random.default_rng(np.random.SeedSequence([seed, tag, *index]))
