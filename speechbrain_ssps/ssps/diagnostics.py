"""SSPS's diagnostics: labels, per-epoch counters, NMI and ``metrics``.

Speaker and video labels (from the training manifest) are only ever used
here, never for sampling. With them, each active step counts how many
pseudo-positives share the anchor's speaker and video, and every clustering
is scored by its NMI against both labelings (SSPS.md §4): SSPS should give
a high speaker accuracy and a low video accuracy. Without labels only the
coverage, the k-means time and the filled fraction are reported.

Example
-------
>>> from speechbrain_ssps.ssps import SSPS
>>> ssps = SSPS(num_utterances=4, repr_dim=2, pos_dim=1, queue_size=4,
...             num_clusters=2, sampling="scs")
>>> sorted(ssps.metrics())
['coverage', 'filled', 'kmeans_seconds']
>>> ssps.set_labels(["a", "a", "b", "b"], ["v1", "v2", "v3", "v3"])
>>> sorted(ssps.metrics())
['coverage', 'filled', 'kmeans_seconds', 'speaker_acc', 'video_acc']
"""

from __future__ import annotations

from typing import Dict, Sequence, Union

import numpy as np
import torch

from speechbrain_ssps import distributed

__all__ = ["Diagnostics", "label_codes"]


def label_codes(
    labels: Union[Sequence, torch.Tensor], n: int, name: str, caller: str
) -> torch.Tensor:
    """Codes 0..L-1 of ``n`` labels, in sorted order of the labels.

    Arguments
    ---------
    labels : sequence or torch.Tensor
        One label (any sortable value) per utterance.
    n : int
        The number of utterances.
    name, caller : str
        The argument and the method, for the error message.

    Returns
    -------
    torch.Tensor
        LongTensor[n].

    Example
    -------
    >>> label_codes(["b", "a", "b"], 3, "speakers", "set_labels").tolist()
    [1, 0, 1]
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.cpu().numpy()
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
            f"{caller}: {name} must hold one label per utterance "
            f"({n}), got shape {labels.shape}"
        )
    _, codes = np.unique(labels, return_inverse=True)
    return torch.from_numpy(codes.astype(np.int64))


class Diagnostics(torch.nn.Module):
    """Labels, counters and metrics of :class:`~speechbrain_ssps.ssps.SSPS`.

    A mixin: it keeps the non-persistent buffers ``_speakers``, ``_videos``
    (label codes, empty without labels) and ``_counts`` (this epoch's
    anchors, covered anchors, same-speaker and same-video pseudo-positives),
    and reads ``assignments``, ``ref_filled`` and ``kmeans_seconds``.
    """

    # Set by SSPS.__init__ and the other parts of SSPS.
    num_utterances: int
    assignments: torch.Tensor
    ref_filled: torch.Tensor
    kmeans_seconds: float
    _has_clusters: bool

    def _init_diagnostics(self) -> None:
        """Registers the (empty) labels and the zeroed counters."""
        self.register_buffer(
            "_speakers", torch.empty(0, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "_videos", torch.empty(0, dtype=torch.long), persistent=False
        )
        # Per-epoch counters: anchors, covered, same speaker, same video.
        self.register_buffer(
            "_counts", torch.zeros(4, dtype=torch.float64), persistent=False
        )
        self.nmi: Dict[str, float] = {}

    def set_labels(
        self,
        speakers: Union[Sequence, torch.Tensor],
        videos: Union[Sequence, torch.Tensor],
    ) -> None:
        """Gives speaker and video labels, for diagnostics only.

        They are never used for sampling; they make ``metrics`` report the
        pseudo-positive speaker/video accuracies and the NMI of the k-means
        assignments.

        Arguments
        ---------
        speakers : sequence or torch.Tensor
            One speaker label (any hashable) per utterance.
        videos : sequence or torch.Tensor
            One video/session label per utterance.
        """
        dev, n = self.assignments.device, self.num_utterances
        speakers = label_codes(speakers, n, "speakers", "set_labels")
        videos = label_codes(videos, n, "videos", "set_labels")
        self._speakers, self._videos = speakers.to(dev), videos.to(dev)
        if self._has_clusters:
            self._compute_nmi()

    def _compute_nmi(self) -> None:
        """NMI of the assigned utterances' clusters vs speakers and videos."""
        from sklearn.metrics import normalized_mutual_info_score

        rows = (self.assignments >= 0).nonzero().squeeze(1)
        pred = self.assignments[rows].cpu().numpy()
        self.nmi = {
            f"nmi_{name}": float(
                normalized_mutual_info_score(labels[rows].cpu().numpy(), pred)
            )
            for name, labels in (
                ("speaker", self._speakers),
                ("video", self._videos),
            )
        }

    def _count(
        self,
        anchors: torch.Tensor,
        positives: torch.Tensor,
        found: torch.Tensor,
    ) -> None:
        """Adds this step's anchors, coverage and label hits (no sync)."""
        self._counts[0] += anchors.numel()
        self._counts[1] += found.sum()
        if self._speakers.numel():
            safe = positives.clamp(min=0)
            for row, labels in ((2, self._speakers), (3, self._videos)):
                same = found & (labels[safe] == labels[anchors])
                self._counts[row] += same.sum()

    def metrics(self) -> Dict[str, float]:
        """Diagnostics of the current epoch.

        Under ``torch.distributed`` the step counters are summed over ranks,
        so every rank must call this.

        Returns
        -------
        dict
            ``coverage`` (fraction of anchors that got a pseudo-positive),
            ``kmeans_seconds``, ``filled`` (fraction of the reference queue
            written); with labels, ``speaker_acc`` and ``video_acc`` (among
            pseudo-positives, the fraction from the anchor's speaker / video)
            and ``nmi_speaker``, ``nmi_video`` of the k-means assignments.
        """
        counts = self._counts.clone()
        if distributed.is_distributed():
            torch.distributed.all_reduce(counts)
        anchors, covered, same_spk, same_vid = counts.tolist()
        out = {
            "coverage": covered / anchors if anchors else 0.0,
            "kmeans_seconds": float(self.kmeans_seconds),
            "filled": float(self.ref_filled.float().mean()),
        }
        if self._speakers.numel():
            out["speaker_acc"] = same_spk / covered if covered else 0.0
            out["video_acc"] = same_vid / covered if covered else 0.0
            out.update(self.nmi)
        return out
