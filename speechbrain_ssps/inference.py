"""Speaker verification that decides with the export's stored threshold.

``export.py --threshold_from=<verify output> --threshold_list=O
--threshold_kind=eer`` stores a calibrated threshold in the export folder
(see ``speechbrain_ssps.thresholds``). :func:`load_verifier` loads that
folder offline as a :class:`CalibratedSpeakerRecognition`, a
``speechbrain.inference.speaker.SpeakerRecognition`` whose ``verify_batch``
and ``verify_files`` decide "same speaker" when the cosine score is
``>=`` the stored threshold (the convention of verify.py's thresholds, so
that the decisions reproduce the error rates it measured), instead of
SpeechBrain's fixed ``> 0.25``. Both also take ``threshold=`` to override
it (SpeechBrain 1.1's ``verify_files`` has no such argument)::

    from speechbrain_ssps.inference import load_verifier

    verifier = load_verifier("results/dino_ssps/1986/export")
    score, same = verifier.verify_files("a.wav", "b.wav")
    verifier.threshold, verifier.threshold_info["trial_list"]

Plain SpeechBrain code can also use the value written into the export's
``hyperparams.yaml``::

    model = SpeakerRecognition.from_hparams(source=export_folder)
    score, _ = model.verify_files("a.wav", "b.wav")
    same = score >= model.hparams.threshold

Authors
-------
* SSPS contributors 2025
"""

import os
from typing import Any, Dict, Optional

from speechbrain.inference.speaker import SpeakerRecognition

from speechbrain_ssps.thresholds import load_threshold


class CalibratedSpeakerRecognition(SpeakerRecognition):
    """``SpeakerRecognition`` deciding with a calibrated threshold.

    The default threshold is ``hparams.threshold`` (written by
    ``export.py`` with a threshold option), or the ``threshold`` attribute
    set by :func:`load_verifier`. Decisions are ``score >= threshold``.

    Arguments
    ---------
    *args : tuple
    **kwargs : dict
        Forwarded to ``SpeakerRecognition``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.threshold: Optional[float] = getattr(
            self.hparams, "threshold", None
        )
        self.threshold_info: Dict[str, Any] = {}

    def _threshold(self, threshold: Optional[float]) -> float:
        """The given threshold, else the stored one."""
        if threshold is not None:
            return float(threshold)
        if self.threshold is None:
            raise ValueError(
                "This export stores no decision threshold: pass threshold=, "
                "or export with --threshold_from=<verify output> or "
                "--threshold=<value>"
            )
        return float(self.threshold)

    def verify_batch(
        self, wavs1, wavs2, wav1_lens=None, wav2_lens=None, threshold=None
    ):
        """Cosine scores and decisions (``score >= threshold``).

        Arguments
        ---------
        wavs1 : torch.Tensor
            Waveforms ``(batch, time)`` at the model's sample rate.
        wavs2 : torch.Tensor
            Waveforms ``(batch, time)`` at the model's sample rate.
        wav1_lens : torch.Tensor, optional
            Relative lengths of ``wavs1``.
        wav2_lens : torch.Tensor, optional
            Relative lengths of ``wavs2``.
        threshold : float, optional
            Overrides the stored threshold.

        Returns
        -------
        score : torch.Tensor
            Cosine similarities, shape ``(batch, 1)``.
        decision : torch.Tensor
            True where the two signals are taken for the same speaker.
        """
        threshold = self._threshold(threshold)
        emb1 = self.encode_batch(wavs1, wav1_lens, normalize=False)
        emb2 = self.encode_batch(wavs2, wav2_lens, normalize=False)
        score = self.similarity(emb1, emb2)
        return score, score >= threshold

    def verify_files(self, path_x, path_y, threshold=None, **kwargs):
        """Verifies two audio files (resampled to the model's rate).

        Arguments
        ---------
        path_x : str
            First file.
        path_y : str
            Second file.
        threshold : float, optional
            Overrides the stored threshold.
        **kwargs : dict
            Arguments to ``load_audio``.

        Returns
        -------
        score : torch.Tensor
            The cosine similarity, shape ``(1,)``.
        decision : torch.Tensor
            True when taken for the same speaker.
        """
        threshold = self._threshold(threshold)
        batch_x = self.load_audio(path_x, **kwargs).unsqueeze(0)
        batch_y = self.load_audio(path_y, **kwargs).unsqueeze(0)
        score, decision = self.verify_batch(
            batch_x, batch_y, threshold=threshold
        )
        return score[0], decision[0]


def _from_export(cls, export_folder: str, device: str):
    """``cls.from_hparams`` on a local export folder, network off."""
    from speechbrain.utils.fetching import FetchConfig

    export_folder = os.path.abspath(export_folder)
    if not os.path.isfile(os.path.join(export_folder, "hyperparams.yaml")):
        raise ValueError(
            f"export_folder {export_folder} has no hyperparams.yaml "
            "(run export.py first)"
        )
    return cls.from_hparams(
        source=export_folder,
        savedir=None,
        fetch_config=FetchConfig(allow_network=False),
        run_opts={"device": device},
    )


def load_exported(
    export_folder: str, device: str = "cpu"
) -> SpeakerRecognition:
    """An exported encoder as SpeechBrain's ``SpeakerRecognition``, offline.

    Arguments
    ---------
    export_folder : str
        A folder written by :func:`speechbrain_ssps.export.export_encoder`
        (``hyperparams.yaml`` and the encoder checkpoint).
    device : str
        Where the model runs, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    speechbrain.inference.speaker.SpeakerRecognition
        The loaded model (nothing is fetched from the network).
    """
    return _from_export(SpeakerRecognition, export_folder, device)


def load_verifier(
    export_folder: str, device: str = "cpu"
) -> CalibratedSpeakerRecognition:
    """Loads an export offline, with its checked stored threshold.

    Arguments
    ---------
    export_folder : str
        A folder written by ``export.py`` with a threshold option (it holds
        ``threshold.json``).
    device : str
        Where the model runs, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    CalibratedSpeakerRecognition
        With ``threshold`` (float) and ``threshold_info`` (the content of
        ``threshold.json``: kind, trial list, source, metrics).
    """
    info = load_threshold(export_folder)  # checks the weights' fingerprint
    model = _from_export(CalibratedSpeakerRecognition, export_folder, device)
    yaml_value = model.threshold
    if yaml_value is not None and abs(yaml_value - info["threshold"]) > 1e-9:
        raise ValueError(
            f"{export_folder}: hyperparams.yaml has threshold {yaml_value} "
            f"but threshold.json {info['threshold']}; re-export"
        )
    model.threshold = info["threshold"]
    model.threshold_info = info
    return model
