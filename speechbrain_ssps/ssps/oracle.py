"""The label oracle of the paper's Table 1: same speaker, other video.

Example
-------
>>> from functools import partial
>>> from speechbrain_ssps.ssps import SSPS
>>> factory = partial(SSPS, repr_dim=4, pos_dim=3, queue_size=8)
>>> spk = ["b", "b", "a", "a", "b", "a"]
>>> vid = ["v1", "v2", "v3", "v4", "v1", "v3"]
>>> oracle = label_oracle(factory, spk, vid)
>>> oracle.assignments.tolist(), oracle.sampling, oracle.fixed_clusters
([1, 1, 0, 0, 1, 0], 'scs', True)
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from speechbrain_ssps.ssps.sampler import SSPS

__all__ = ["label_oracle"]


def label_oracle(
    factory: Callable[..., SSPS],
    speakers: Sequence,
    videos: Sequence,
) -> SSPS:
    """An SSPS whose clusters are the speakers and groups are the videos.

    Builds an SSPS from ``factory`` (e.g. the recipe's
    ``!name:speechbrain_ssps.ssps.SSPS`` partial) with one fixed cluster per
    speaker (codes in sorted order of the speaker names) and the videos as
    exclusion groups, so every pseudo-positive is an utterance of the
    anchor's speaker recorded in another video. The labels are also given
    to :meth:`SSPS.set_labels` for the diagnostics.

    Arguments
    ---------
    factory : callable
        Builds an SSPS from ``num_utterances``, ``num_clusters`` and
        ``sampling`` keyword arguments (the other options preset).
    speakers : sequence
        One speaker label per training utterance (row order of the data).
    videos : sequence
        One video/session label per training utterance.

    Returns
    -------
    SSPS
        With its clustering installed (``fixed``: no k-means is run).
    """
    speakers, videos = list(speakers), list(videos)
    names = sorted(set(speakers))
    code = {name: k for k, name in enumerate(names)}
    ssps = factory(
        num_utterances=len(speakers), num_clusters=len(names), sampling="scs"
    )
    ssps.set_exclusion_groups(videos)
    ssps.set_clusters(
        torch.tensor([code[s] for s in speakers]),
        torch.zeros_like(ssps.centroids),
        fixed=True,
    )
    ssps.set_labels(speakers, videos)
    return ssps
