"""Self-Supervised Positive Sampling (SSPS).

SSPS replaces the same-utterance positive of a self-supervised speaker
framework (DINO, SimCLR) by the embedding of *another* utterance that the
model itself believes is spoken by the same speaker, recorded in another
condition (T. Lepage and R. Dehak, "SSPS: Self-Supervised Positive Sampling
for Robust Self-Supervised Speaker Verification", Interspeech 2025,
arXiv 2505.14561). SSPS.md §3 states the algorithm; the reference
implementation is ``sslsv/methods/_SSPS`` (theolepage/sslsv).

One idea per module; :class:`SSPS` is assembled from the parts:

``sampler``
    :class:`SSPS` itself: construction, ``sample`` (target cluster, uniform
    queue entry, fallback), ``swap``, ``update``, ``step`` and the
    checkpoint hooks.
``queues``
    The reference queue ``Q^`` (one row per utterance) and the positive
    ring queue ``Q'``: storage, pointer, row updates, DDP gathering.
``clustering``
    The epoch schedule (``filling``, ``active``, ``on_epoch_start``), the
    k-means of each active epoch and ``set_clusters``.
``index``
    The sorted cluster/slot keys that make sampling vectorised, exclusion
    groups, and the table of each cluster's nearest clusters.
``knn``
    Nearest-neighbour sampling (``sampling="knn"``): M nearest queue
    entries by reference representation, one product + topk per step.
``diagnostics``
    Speaker/video labels, per-epoch counters, NMI and ``metrics``.
``options``
    :class:`SSPSOptionError` and the constructor's option rules.
``oracle``
    :func:`label_oracle` (clusters = speakers, groups = videos).

Example
-------
>>> from speechbrain_ssps.ssps import SSPS, SSPSOptionError, label_oracle
>>> try:
...     SSPS(num_utterances=10, repr_dim=4, pos_dim=3, num_clusters=20)
... except SSPSOptionError as err:
...     print(err.option)
num_clusters
"""

from speechbrain_ssps.ssps.options import SAMPLING_METHODS, SSPSOptionError
from speechbrain_ssps.ssps.oracle import label_oracle
from speechbrain_ssps.ssps.sampler import SSPS

__all__ = ["SAMPLING_METHODS", "SSPS", "SSPSOptionError", "label_oracle"]
