"""Whole-utterance speaker embeddings in length-sorted, padded batches.

Verification scores whole test utterances, which range from ~4 s to over
two minutes in VoxCeleb1. ``embed_utterances`` reads every file header
first (so a missing or unreadable file fails before any compute), splits
files longer than ``max_chunk_seconds`` into equal chunks, sorts all pieces
by length and packs them into batches whose padded size stays under
``batch_seconds`` of audio, passes relative lengths to the encoder (so
normalisation and pooling ignore the padding), and averages the embeddings
of a file's chunks weighted by their lengths. Files are read in background
threads (soundfile releases the GIL), only the needed spans of long files
are read, and everything runs under ``torch.no_grad``.

Padding: SpeechBrain's ``encode_batch`` runs the encoder over the
features of the zero padding, whose log-energies are very negative, and the
ECAPA-TDNN's convolutions carry them into the last valid frames and from
there into the pooled statistics (SpeechBrain issue #1374). On a briefly
trained model, 3 frames (30 ms) of padding already brought the cosine
between an utterance's padded and unpadded embeddings down to 0.68.
``feature_encoder`` therefore replaces the normalised features of padded
frames by a mirror image of the valid ones (``reflect_padding``), which is
what the encoder's reflect-padded convolutions see on an unpadded input;
that kept the cosine above 0.999 for 1 to 30 padded frames (0.9956 with
zeros instead), and length-sorted batches keep the padding short anyway.

The encoder is either a ``speechbrain.inference`` ``EncoderClassifier`` /
``SpeakerRecognition`` (its ``compute_features``, ``mean_var_norm`` and
``embedding_model`` modules are run through ``feature_encoder``, and its
``audio_normalizer`` resamples the files) or any callable
``fn(wavs, wav_lens) -> embeddings`` taking a ``(B, T)`` batch and ``(B,)``
relative lengths.

Authors
-------
* SSPS contributors 2025
"""

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import soundfile as sf
import torch
from speechbrain.dataio.preprocess import AudioNormalizer
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)

EncoderFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Piece(NamedTuple):
    """A span of one file: ``[start, stop)`` in the file's own samples."""

    uid: str
    path: str
    start: int
    stop: int
    file_rate: int
    num_samples: int  # length once resampled to the encoder's rate


def reflect_padding(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Fills each item's padded frames with a mirror image of its frames.

    Frame ``t >= n`` of an item with ``n`` valid frames takes the value of
    frame ``n - 2 - (t - n)``, reflecting again at both ends when the
    padding is longer than the item, i.e. what a reflect-padded convolution
    (ECAPA-TDNN's) sees past the end of an unpadded input.

    Arguments
    ---------
    feats : torch.Tensor
        Features, shape ``(B, frames, ...)``.
    lengths : torch.Tensor
        Relative lengths, shape ``(B,)``; item ``b`` has
        ``round(lengths[b] * frames)`` valid frames (SpeechBrain's
        convention).

    Returns
    -------
    torch.Tensor
        A new tensor, equal to ``feats`` on the valid frames.

    Example
    -------
    >>> feats = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0]])
    >>> reflect_padding(feats, torch.tensor([3 / 7]))
    tensor([[1., 2., 3., 2., 1., 2., 3.]])
    """
    frames = feats.shape[1]
    valid = torch.round(lengths.to(feats.device) * frames).long()
    valid = valid.clamp(1, frames)[:, None]
    t = torch.arange(frames, device=feats.device)[None, :]
    period = (2 * valid - 2).clamp_min(1)
    phase = t % period
    index = torch.where(phase < valid, phase, period - phase)
    index = torch.where(t < valid, t, index)
    index = index.reshape(*index.shape, *([1] * (feats.ndim - 2)))
    return torch.gather(feats, 1, index.expand_as(feats))


def feature_encoder(
    compute_features: torch.nn.Module,
    mean_var_norm: torch.nn.Module,
    embedding_model: torch.nn.Module,
    device: Optional[str] = None,
) -> EncoderFn:
    """``fn(wavs, wav_lens)``: features, normalisation, padding, encoder.

    The normalised features of padded frames are replaced by
    ``reflect_padding`` before the encoder.

    Arguments
    ---------
    compute_features : torch.nn.Module
        Waveforms ``(B, T)`` to features ``(B, frames, F)`` (e.g. Fbank).
    mean_var_norm : torch.nn.Module
        Called as ``mean_var_norm(feats, wav_lens)``.
    embedding_model : torch.nn.Module
        Called as ``embedding_model(feats, wav_lens)`` (e.g. ECAPA-TDNN);
        should be in eval mode.
    device : str, optional
        Where inputs are moved before the computation.

    Returns
    -------
    callable
        The encoder function, returning what ``embedding_model`` returns.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> from speechbrain.processing.features import InputNormalization
    >>> model = ECAPA_TDNN(24, channels=[8, 8, 8, 8, 24], lin_neurons=4)
    >>> fn = feature_encoder(
    ...     Fbank(n_mels=24),
    ...     InputNormalization(norm_type="sentence", std_norm=False),
    ...     model.eval(),
    ... )
    >>> fn(torch.randn(2, 8000), torch.tensor([0.7, 1.0])).shape
    torch.Size([2, 1, 4])
    """

    def encode(wavs: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        if device is not None:
            wavs, wav_lens = wavs.to(device), wav_lens.to(device)
        feats = compute_features(wavs.float())
        feats = mean_var_norm(feats, wav_lens)
        return embedding_model(reflect_padding(feats, wav_lens), wav_lens)

    return encode


def _probe(uid: str, path: str) -> Tuple[int, int]:
    """Frames and sample rate of a file, or a ValueError naming it."""
    try:
        info = sf.info(path)
    except Exception as error:  # soundfile raises several types
        raise ValueError(
            f"Cannot read utterance {uid!r}: {path} ({error})"
        ) from error
    if info.frames <= 0:
        raise ValueError(f"Utterance {uid!r} is empty: {path}")
    return int(info.frames), int(info.samplerate)


def plan_pieces(
    lengths: Dict[str, Tuple[str, int, int]],
    sample_rate: int,
    max_chunk_seconds: Optional[float],
) -> List[Piece]:
    """Splits every file into at most ``max_chunk_seconds`` long pieces.

    A file of ``n`` samples (at the encoder's rate) becomes
    ``ceil(n / max_chunk)`` pieces of (nearly) equal length, so that no
    piece is a short tail.

    Arguments
    ---------
    lengths : dict
        Utterance ID to ``(path, frames, file_sample_rate)``.
    sample_rate : int
        The encoder's sample rate.
    max_chunk_seconds : float, optional
        Longest piece; None never splits.

    Returns
    -------
    list of Piece
        In input order, a file's pieces in time order.

    Example
    -------
    >>> pieces = plan_pieces({"a": ("a.wav", 10, 16000)}, 16000, 4 / 16000)
    >>> [(p.start, p.stop) for p in pieces]
    [(0, 3), (3, 7), (7, 10)]
    """
    pieces = []
    for uid, (path, frames, rate) in lengths.items():
        total = max(1, round(frames * sample_rate / rate))
        count = 1
        if max_chunk_seconds is not None:
            max_chunk = max(1, int(max_chunk_seconds * sample_rate))
            count = math.ceil(total / max_chunk)
        bounds = [round(i * frames / count) for i in range(count + 1)]
        for start, stop in zip(bounds[:-1], bounds[1:]):
            resampled = max(1, round((stop - start) * sample_rate / rate))
            pieces.append(Piece(uid, path, start, stop, rate, resampled))
    return pieces


def make_batches(pieces: List[Piece], max_samples: int) -> List[List[Piece]]:
    """Packs pieces, longest first, into batches of bounded padded size.

    A batch holds as many pieces as fit in ``count * longest <=
    max_samples`` (at least one).

    Arguments
    ---------
    pieces : list of Piece
        The pieces to pack.
    max_samples : int
        Budget of padded samples per batch.

    Returns
    -------
    list of list of Piece
        Batches, longest pieces first.

    Example
    -------
    >>> sizes = {"a": 3, "b": 9, "c": 4, "d": 2}
    >>> pieces = [Piece(u, "", 0, n, 1, n) for u, n in sizes.items()]
    >>> [[p.uid for p in b] for b in make_batches(pieces, 10)]
    [['b'], ['c', 'a'], ['d']]
    """
    ordered = sorted(pieces, key=lambda p: -p.num_samples)
    batches: List[List[Piece]] = []
    for piece in ordered:
        if batches:
            batch = batches[-1]
            if (len(batch) + 1) * batch[0].num_samples <= max_samples:
                batch.append(piece)
                continue
        batches.append([piece])
    return batches


def _read_batch(
    batch: List[Piece], normalizer: AudioNormalizer
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Reads, resamples/downmixes and pads a batch; relative lengths."""
    signals = []
    for piece in batch:
        try:
            audio, rate = sf.read(
                piece.path,
                start=piece.start,
                stop=piece.stop,
                dtype="float32",
                always_2d=True,
            )
        except Exception as error:
            raise ValueError(
                f"Cannot read utterance {piece.uid!r}: {piece.path} ({error})"
            ) from error
        signals.append(normalizer(torch.from_numpy(audio), rate))
    longest = max(len(s) for s in signals)
    wavs = torch.zeros(len(signals), longest)
    for row, signal in enumerate(signals):
        wavs[row, : len(signal)] = signal
    lengths = torch.tensor([len(s) / longest for s in signals])
    return wavs, lengths


def _prefetch(
    batches: List[List[Piece]], normalizer: AudioNormalizer, workers: int
) -> Iterator[Tuple[List[Piece], Tuple[torch.Tensor, torch.Tensor]]]:
    """Yields (batch, audio), reading up to ``workers`` batches ahead."""
    if workers <= 0:
        for batch in batches:
            yield batch, _read_batch(batch, normalizer)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for batch in batches:
            pending.append((batch, pool.submit(_read_batch, batch, normalizer)))
            if len(pending) > workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def embed_utterances(
    encoder,
    paths: Dict[str, str],
    batch_seconds: float = 120.0,
    max_chunk_seconds: Optional[float] = 60.0,
    sample_rate: Optional[int] = None,
    device: Optional[str] = None,
    num_workers: int = 2,
    log_every: int = 0,
) -> Dict[str, torch.Tensor]:
    """Embeddings of whole utterances.

    Arguments
    ---------
    encoder : SpeakerRecognition or callable
        A SpeechBrain inference interface (its modules are run through
        ``feature_encoder``; one without the standard modules is called
        through ``encode_batch``), or a callable ``fn(wavs, wav_lens)`` such
        as ``feature_encoder(...)``; either returns ``(B, D)`` or
        ``(B, 1, D)`` embeddings. Put modules in eval mode before passing a
        callable.
    paths : dict
        Utterance ID to audio file (any format soundfile reads).
    batch_seconds : float
        Padded audio per batch, in seconds (bounds memory).
    max_chunk_seconds : float, optional
        Files longer than this are split into equal chunks whose embeddings
        are averaged (weighted by length); None never splits.
    sample_rate : int, optional
        Rate the encoder expects; files are resampled to it. Default: the
        encoder's ``audio_normalizer.sample_rate`` if it has one, else 16000.
    device : str, optional
        Device the batch is moved to for a callable encoder (an inference
        interface uses its own device).
    num_workers : int
        Threads reading audio ahead of the encoder (0: read inline).
    log_every : int
        Log progress every this many batches (0: only at the end).

    Returns
    -------
    dict
        Utterance ID to embedding, shape ``(D,)``, float32 on the CPU.

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmp_path") / "a.wav")
    >>> sf.write(path, np.ones(1600, dtype="float32") * 0.5, 16000)
    >>> def mean_and_length(wavs, lens):
    ...     n = lens * wavs.shape[1]
    ...     return torch.stack([wavs.sum(1) / n, n], dim=1)
    >>> emb = embed_utterances(mean_and_length, {"a": path}, 120, 0.05)
    >>> emb["a"].tolist()  # two 800-sample chunks, averaged
    [0.5, 800.0]
    """
    if batch_seconds <= 0:
        raise ValueError(f"batch_seconds must be > 0, got {batch_seconds}")
    if max_chunk_seconds is not None and max_chunk_seconds <= 0:
        raise ValueError(
            f"max_chunk_seconds must be > 0 or None, got {max_chunk_seconds}"
        )
    if not paths:
        return {}
    audio_normalizer = getattr(encoder, "audio_normalizer", None)
    if sample_rate is None:
        sample_rate = getattr(audio_normalizer, "sample_rate", 16000)
    if audio_normalizer is None or audio_normalizer.sample_rate != sample_rate:
        audio_normalizer = AudioNormalizer(sample_rate)
    mods = getattr(encoder, "mods", None)
    if mods is not None and all(
        hasattr(mods, name)
        for name in ("compute_features", "mean_var_norm", "embedding_model")
    ):
        encode = feature_encoder(
            mods.compute_features,
            mods.mean_var_norm,
            mods.embedding_model,
            device=getattr(encoder, "device", device),
        )
    elif hasattr(encoder, "encode_batch"):
        encode = encoder.encode_batch
    elif callable(encoder):

        def encode(wavs, lens):
            if device is not None:
                wavs, lens = wavs.to(device), lens.to(device)
            return encoder(wavs, lens)

    else:
        raise ValueError(
            "encoder must have encode_batch(wavs, wav_lens) or be callable, "
            f"got {type(encoder).__name__}"
        )

    uids = list(paths)
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        probes = list(pool.map(_probe, uids, [paths[u] for u in uids]))
    lengths = {u: (paths[u], *probe) for u, probe in zip(uids, probes)}
    pieces = plan_pieces(lengths, sample_rate, max_chunk_seconds)
    batches = make_batches(pieces, int(batch_seconds * sample_rate))

    sums: Dict[str, torch.Tensor] = {}
    weights: Dict[str, float] = {}
    with torch.no_grad():
        for number, (batch, (wavs, lens)) in enumerate(
            _prefetch(batches, audio_normalizer, num_workers), start=1
        ):
            out = encode(wavs, lens)
            out = out.detach().to("cpu", torch.float32).reshape(len(batch), -1)
            for piece, row, length in zip(batch, out, lens * wavs.shape[1]):
                weight = float(length)
                if piece.uid in sums:
                    sums[piece.uid] += weight * row
                    weights[piece.uid] += weight
                else:
                    sums[piece.uid] = weight * row
                    weights[piece.uid] = weight
            if log_every and number % log_every == 0:
                logger.info(f"Embedded {number}/{len(batches)} batches")
    logger.info(
        f"Embedded {len(uids)} utterances ({len(pieces)} pieces, "
        f"{len(batches)} batches)"
    )
    return {uid: sums[uid] / weights[uid] for uid in uids}
