"""A quick verification pass at the end of training epochs.

``EpochValidator`` embeds fixed-length segments of the utterances of one
trial list with the encoder being trained (eval mode, no gradient, BatchNorm
statistics untouched), scores the list with the cosine similarity and
returns its EER and minDCF, which ``SSLBrain`` writes to ``train_log.txt``
next to the loss and the SSPS diagnostics. The segments are the first
``segment_seconds`` of each file (4 s, as the authors' toolkit evaluates
during training), shorter files repeated up to that length, so every batch
is one tensor and the numbers of two epochs compare.

This is for monitoring. On the default list, VoxCeleb1-O (an evaluation
list), picking a checkpoint by it is not allowed; a dev split of training
speakers (``voxceleb_prepare.py --dev_speakers``) is what selection may use.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import csv
import os
from typing import Callable, Dict, List, Optional

import numpy as np
import soundfile as sf
import torch

from speechbrain_ssps.scoring import compute_eer, compute_min_dcf
from speechbrain_ssps.trials import read_trials, score_trials


def read_segment(path: str, num_samples: int) -> np.ndarray:
    """The first ``num_samples`` samples of a file, repeated if shorter.

    Arguments
    ---------
    path : str
        A mono audio file.
    num_samples : int
        Length of the segment.

    Returns
    -------
    numpy.ndarray
        ``(num_samples,)`` float32.

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "a.wav")
    >>> sf.write(path, np.arange(3, dtype=np.float32) / 4, 16000)
    >>> read_segment(path, 7).tolist()
    [0.0, 0.25, 0.5, 0.0, 0.25, 0.5, 0.0]
    """
    try:
        audio, _ = sf.read(path, frames=num_samples, dtype="float32")
    except (RuntimeError, sf.LibsndfileError) as error:
        raise ValueError(f"validation: cannot read {path}: {error}") from None
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise ValueError(f"validation: {path} holds no audio")
    if audio.size < num_samples:
        audio = np.resize(audio, num_samples)  # repeats the signal
    return audio


class EpochValidator:
    """EER and minDCF of one trial list, computed every ``every`` epochs.

    Arguments
    ---------
    trials_path : str
        Trial list (``<label> <enrol_ID> <test_ID>``, as the prep writes).
    manifest_path : str
        CSV with ``ID`` and ``wav`` columns holding every trial's IDs.
    every : int
        Validate at epochs ``every, 2 * every, ...``; 0 turns it off.
    segment_seconds : float
        Length of the embedded segment of each utterance.
    sample_rate : int
        Sample rate of the files.
    batch_size : int
        Segments per forward pass.
    p_target : float
        Target prior of the minDCF.
    name : str
        Prefix of the logged values (``<name>_eer``, ``<name>_mindcf``).
    trials_name : str, optional
        What the list is (``O``, ``dev``, ...), stored with each epoch
        checkpoint as ``valid_trials``; default: the file name without
        ``trials_`` and extension. Only ``dev`` may select checkpoints
        (``export.py --select best_dev``).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rows = []
    >>> for i, freq in enumerate([100.0, 100.0, 900.0]):
    ...     t = np.arange(16000) / 16000
    ...     sf.write(str(tmp / f"{i}.wav"), np.sin(2 * np.pi * freq * t), 16000)
    ...     rows.append(f"u{i},{tmp / f'{i}.wav'}")
    >>> _ = (tmp / "m.csv").write_text("ID,wav\\n" + "\\n".join(rows) + "\\n")
    >>> _ = (tmp / "t.txt").write_text("1 u0 u1\\n0 u0 u2\\n")
    >>> validator = EpochValidator(
    ...     str(tmp / "t.txt"), str(tmp / "m.csv"), segment_seconds=0.5
    ... )
    >>> spectrum = lambda wavs: torch.fft.rfft(wavs).abs()[:, :1000]
    >>> validator(spectrum)["valid_eer"]
    0.0
    """

    def __init__(
        self,
        trials_path: str,
        manifest_path: str,
        every: int = 1,
        segment_seconds: float = 4.0,
        sample_rate: int = 16000,
        batch_size: int = 64,
        p_target: float = 0.01,
        name: str = "valid",
        trials_name: Optional[str] = None,
    ):
        if int(every) < 0:
            raise ValueError(f"valid_every={every}: must be >= 0")
        if not segment_seconds > 0:
            raise ValueError(
                f"valid_segment_seconds={segment_seconds}: must be > 0"
            )
        self.every = int(every)
        self.trials_path = trials_path
        self.num_samples = int(round(segment_seconds * sample_rate))
        self.batch_size = int(batch_size)
        self.p_target = float(p_target)
        self.name = name
        if trials_name is None:
            stem = os.path.splitext(os.path.basename(trials_path))[0]
            trials_name = (
                stem[len("trials_") :] if stem.startswith("trials_") else stem
            )
        self.trials_name = str(trials_name)
        self.trials = read_trials(trials_path)
        if not self.trials:
            raise ValueError(f"validation: {trials_path} holds no trial")
        wavs = self._read_manifest(manifest_path)
        needed = sorted({u for t in self.trials for u in t[1:]})
        missing = [u for u in needed if u not in wavs]
        if missing:
            raise ValueError(
                f"validation: {trials_path} names {missing[0]!r}, which is "
                f"not in {manifest_path} ({len(missing)} such IDs)"
            )
        self.ids: List[str] = needed
        self.paths = [wavs[u] for u in needed]

    @staticmethod
    def _read_manifest(path: str) -> Dict[str, str]:
        if not os.path.isfile(path):
            raise ValueError(f"validation: no manifest {path}")
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if not {"ID", "wav"} <= set(reader.fieldnames or ()):
                raise ValueError(
                    f"validation: {path} needs ID and wav columns, "
                    f"has {reader.fieldnames}"
                )
            return {row["ID"]: row["wav"] for row in reader}

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` (1-based) is a validation epoch."""
        return self.every > 0 and int(epoch) % self.every == 0

    @torch.no_grad()
    def embed(
        self, encode: Callable[[torch.Tensor], torch.Tensor], device=None
    ) -> Dict[str, torch.Tensor]:
        """``{ID: embedding}`` of every trial utterance's segment."""
        embeddings = {}
        for start in range(0, len(self.ids), self.batch_size):
            ids = self.ids[start : start + self.batch_size]
            paths = self.paths[start : start + self.batch_size]
            batch = np.stack([read_segment(p, self.num_samples) for p in paths])
            wavs = torch.from_numpy(batch)
            if device is not None:
                wavs = wavs.to(device)
            out = encode(wavs).float().reshape(len(ids), -1).cpu()
            embeddings.update(zip(ids, out))
        return embeddings

    def __call__(
        self,
        encode: Callable[[torch.Tensor], torch.Tensor],
        device: Optional[str] = None,
    ) -> Dict[str, float]:
        """EER (%) and minDCF of the list with ``encode``: [B, T] -> [B, D].

        Put the encoder in eval mode first (``SSLBrain.validate`` does).
        """
        scores, labels = score_trials(self.embed(encode, device), self.trials)
        if labels.min() == labels.max():
            raise ValueError(
                f"validation: {self.trials_path} needs target and "
                "non-target trials"
            )
        eer, _ = compute_eer(scores, labels)
        min_dcf, _ = compute_min_dcf(scores, labels, p_target=self.p_target)
        return {
            f"{self.name}_eer": round(100.0 * float(eer), 4),
            f"{self.name}_mindcf": round(float(min_dcf), 4),
        }
