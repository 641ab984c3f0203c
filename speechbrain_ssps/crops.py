"""Random crops (views) of one waveform for the SSL data pipeline.

Each view is an independent uniformly placed crop of the utterance, as in
sslsv's ``sample_frames`` / ``sample_frames_dino``. Utterances shorter than a
crop are read circularly (the crop wraps around the end, i.e. the signal is
tiled), so a crop of any length can be cut from any non-empty signal.

``make_ssl_views_pipeline`` builds the SpeechBrain dynamic item that reads
the audio once and provides the views as ``view_0``, ``view_1``, ... (global
views first, then local ones) and, for SSPS, the un-augmented reference crop
``ref``. Every view has a fixed length, so ``PaddedBatch`` stacks them
without padding.

Audio is read by :func:`load_mono`: multi-channel files are downmixed to
mono (mean over channels); a file that cannot be read (deleted or corrupted
after the start-up check of :mod:`speechbrain_ssps.preflight`), is empty or
holds NaN / infinite samples raises a ``ValueError`` naming the file, which
stops the run (checkpoints already written stay intact).

Crop positions come from torch's global RNG by default. With a ``seed``,
they are a pure function of ``(seed, epoch, utterance index)`` (see
:func:`crop_seed`), so a resumed run, whose data loader skips the batches
already seen, gets exactly the crops of an uninterrupted run.
"""

import hashlib
from typing import List, Optional, Sequence, Union

import torch
from speechbrain.dataio.dataio import read_audio
from speechbrain.utils.data_pipeline import GeneratorDynamicItem
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)


def random_crop(
    wav: torch.Tensor,
    num_samples: int,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Cut a random crop of ``num_samples`` samples from a 1-D waveform.

    If ``wav`` is at least ``num_samples`` long, the crop is a plain slice
    whose start is uniform over the valid positions. Otherwise the start is
    uniform over ``[0, len(wav))`` and the crop wraps around the end of the
    signal as many times as needed.

    Arguments
    ---------
    wav : torch.Tensor
        Waveform ``[T]`` with ``T >= 1``.
    num_samples : int
        Crop length (>= 1).
    generator : torch.Generator, optional
        Random generator (torch's global one when None).

    Returns
    -------
    torch.Tensor
        The crop, ``[num_samples]``.

    Example
    -------
    >>> random_crop(torch.arange(10.0), 4).shape
    torch.Size([4])
    >>> random_crop(torch.tensor([7.0]), 3).tolist()
    [7.0, 7.0, 7.0]
    """
    if wav.dim() != 1:
        raise ValueError(
            f"random_crop expects a 1-D waveform, got shape {tuple(wav.shape)}"
        )
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    length = wav.shape[0]
    if length == 0:
        raise ValueError("random_crop got an empty waveform (0 samples)")
    if length >= num_samples:
        start = int(
            torch.randint(length - num_samples + 1, (1,), generator=generator)
        )
        return wav[start : start + num_samples]
    start = int(torch.randint(length, (1,), generator=generator))
    idx = (start + torch.arange(num_samples, device=wav.device)) % length
    return wav[idx]


def multi_crop(
    wav: torch.Tensor,
    crop_samples: Sequence[int],
    generator: Optional[torch.Generator] = None,
) -> List[torch.Tensor]:
    """Cut one independent random crop per requested length.

    Arguments
    ---------
    wav : torch.Tensor
        Waveform ``[T]`` with ``T >= 1``.
    crop_samples : sequence of int
        Length of each crop, in output order.
    generator : torch.Generator, optional
        Random generator (torch's global one when None).

    Returns
    -------
    list of torch.Tensor
        ``len(crop_samples)`` crops, crop ``k`` of shape ``[crop_samples[k]]``.

    Example
    -------
    >>> [c.shape[0] for c in multi_crop(torch.randn(100), [40, 40, 20])]
    [40, 40, 20]
    """
    return [random_crop(wav, n, generator=generator) for n in crop_samples]


def ssl_view_keys(
    num_global: int, num_local: int, with_reference: bool = False
) -> List[str]:
    """Names of the keys provided by ``make_ssl_views_pipeline``.

    Arguments
    ---------
    num_global : int
        Number of global views.
    num_local : int
        Number of local views.
    with_reference : bool
        Whether the reference crop ``ref`` is provided.

    Returns
    -------
    list of str
        ``view_0`` ... ``view_{G+L-1}`` (global views first), then ``ref``.

    Example
    -------
    >>> ssl_view_keys(2, 1, with_reference=True)
    ['view_0', 'view_1', 'view_2', 'ref']
    """
    keys = [f"view_{i}" for i in range(num_global + num_local)]
    if with_reference:
        keys.append("ref")
    return keys


def load_mono(wav: Union[str, dict]) -> torch.Tensor:
    """Read an utterance as a mono float waveform, or fail naming the file.

    Arguments
    ---------
    wav : str or dict
        A path, or ``{"file": path, "start": s, "stop": e}`` as accepted by
        ``speechbrain.dataio.dataio.read_audio``.

    Returns
    -------
    torch.Tensor
        ``[T]`` with ``T >= 1``; multi-channel audio is averaged over its
        channels.

    Raises
    ------
    ValueError
        Naming the file when it cannot be read, is empty, or holds NaN or
        infinite samples.

    Example
    -------
    >>> import soundfile as sf
    >>> path = str(getfixture("tmpdir") / "stereo.wav")
    >>> sf.write(path, [[0.5, 0.25], [-0.5, 0.0]], 16000, subtype="FLOAT")
    >>> load_mono(path).tolist()
    [0.375, -0.25]
    """
    path = wav.get("file") if isinstance(wav, dict) else wav
    try:
        signal = read_audio(wav)
    except Exception as err:  # soundfile/read_audio raise several types
        raise ValueError(
            f"cannot read audio file {path!r} (deleted or corrupted after "
            f"the start-up check?): {type(err).__name__}: {err}"
        ) from err
    if signal.dim() == 2:
        signal = signal.mean(dim=1)
    if signal.dim() != 1 or signal.shape[0] == 0:
        raise ValueError(
            f"audio file {path!r} is empty or malformed: read shape "
            f"{tuple(signal.shape)}"
        )
    if not bool(torch.isfinite(signal).all()):
        raise ValueError(f"audio file {path!r} holds NaN or infinite samples")
    return signal


def crop_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the crop generator of one utterance in one epoch.

    A hash (BLAKE2b) of the three integers, so that nearby triples give
    unrelated streams; independent of the process, the worker and the
    Python hash seed.

    Arguments
    ---------
    seed : int
        Run seed.
    epoch : int
        Epoch (as passed to ``set_epoch``).
    index : int
        Utterance index (row of the training manifest).

    Returns
    -------
    int
        A seed in ``[0, 2**63)`` for ``torch.Generator.manual_seed``.

    Example
    -------
    >>> crop_seed(1986, 3, 7) == crop_seed(1986, 3, 7)
    True
    >>> crop_seed(1986, 3, 7) == crop_seed(1986, 4, 7)
    False
    """
    text = f"{int(seed)}:{int(epoch)}:{int(index)}".encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class SSLViewsPipeline(GeneratorDynamicItem):
    """The dynamic item returned by :func:`make_ssl_views_pipeline`.

    It takes the audio item (and, when seeded, the utterance index) and
    provides one crop per key. The epoch lives in a one-element tensor in
    shared memory, so DataLoader worker processes, persistent ones included,
    see the value set by :meth:`set_epoch` in the main process.

    Arguments
    ---------
    lengths : sequence of int
        Crop length of each provided key, in order.
    keys : sequence of str
        Provided keys.
    key : str
        Dataset item holding the audio path (or ``file``/``start``/``stop``
        dict).
    seed : int, optional
        Seed of the deterministic crops; None: torch's global RNG.
    index_key : str
        Dataset item holding the integer utterance index (only taken when
        ``seed`` is set).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        keys: Sequence[str],
        key: str = "wav",
        seed: Optional[int] = None,
        index_key: str = "index",
    ):
        takes = [key] if seed is None else [key, index_key]
        super().__init__(takes=takes, func=self._views, provides=list(keys))
        self.lengths = [int(n) for n in lengths]
        self.seed = None if seed is None else int(seed)
        self._epoch = torch.zeros((), dtype=torch.int64)
        try:
            self._epoch.share_memory_()
        except RuntimeError as err:  # no shared memory on this system
            logger.warning(
                "Crop epoch not in shared memory (%s): persistent DataLoader "
                "workers will not see set_epoch",
                err,
            )

    @property
    def epoch(self) -> int:
        """The epoch that seeds the crops."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; call it before the epoch's DataLoader iterator.

        Arguments
        ---------
        epoch : int
            Epoch number (SpeechBrain's 1-based epoch).
        """
        self._epoch.fill_(int(epoch))

    def _views(self, wav, index=None):
        signal = load_mono(wav)
        generator = None
        if self.seed is not None:
            seed = crop_seed(self.seed, self.epoch, int(index))
            generator = torch.Generator().manual_seed(seed)
        for crop in multi_crop(signal, self.lengths, generator=generator):
            # Own the memory: a slice would keep the whole signal alive.
            yield crop.clone()


def make_ssl_views_pipeline(
    num_global: int,
    global_samples: int,
    num_local: int = 0,
    local_samples: Optional[int] = None,
    reference_samples: Optional[int] = None,
    key: str = "wav",
    seed: Optional[int] = None,
    index_key: str = "index",
) -> SSLViewsPipeline:
    """Build the dynamic item that turns an audio path into SSL views.

    The audio is read once with :func:`load_mono` (a path, or a dict with
    ``file``/``start``/``stop``; multi-channel audio is downmixed), then
    ``num_global`` crops of ``global_samples``, ``num_local`` crops of
    ``local_samples`` and, if ``reference_samples`` is set, one reference
    crop are cut independently.

    Without ``seed``, crops use torch's global RNG, which PyTorch seeds
    differently in each DataLoader worker. With ``seed``, the item also
    takes ``index_key`` (the utterance index) and draws the crops of an
    utterance from a generator seeded by ``crop_seed(seed, epoch, index)``;
    call ``pipeline.set_epoch(epoch)`` at the start of every epoch, before
    the DataLoader iterator (and its workers) are created.

    Arguments
    ---------
    num_global : int
        Number of global views (>= 1).
    global_samples : int
        Length of a global view, in samples.
    num_local : int
        Number of local views (>= 0).
    local_samples : int, optional
        Length of a local view; required when ``num_local > 0``.
    reference_samples : int, optional
        Length of the un-augmented SSPS reference crop ``ref``; no reference
        when None.
    key : str
        Name of the dataset item holding the audio path.
    seed : int, optional
        Makes crops a pure function of ``(seed, epoch, index)``.
    index_key : str
        Name of the dataset item holding the utterance index (used only
        with ``seed``).

    Returns
    -------
    SSLViewsPipeline
        A ``GeneratorDynamicItem`` taking ``key`` (and ``index_key`` when
        seeded) and providing ``ssl_view_keys(...)``, for
        ``speechbrain.dataio.dataset.add_dynamic_item``.

    Example
    -------
    >>> import soundfile as sf
    >>> path = str(getfixture("tmpdir") / "utt.wav")
    >>> sf.write(path, torch.randn(800).numpy(), 16000)
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({"utt1": {"wav": path, "index": 0}})
    >>> pipeline = make_ssl_views_pipeline(2, 400, 1, 200, 500)
    >>> data.add_dynamic_item(pipeline)
    >>> data.set_output_keys(ssl_view_keys(2, 1, with_reference=True))
    >>> {k: v.shape[0] for k, v in data[0].items()}
    {'view_0': 400, 'view_1': 400, 'view_2': 200, 'ref': 500}
    >>> seeded = make_ssl_views_pipeline(2, 400, seed=1986)
    >>> seeded.takes
    ['wav', 'index']
    """
    if num_global < 1:
        raise ValueError(f"num_global must be >= 1, got {num_global}")
    if num_local < 0:
        raise ValueError(f"num_local must be >= 0, got {num_local}")
    if global_samples < 1:
        raise ValueError(f"global_samples must be >= 1, got {global_samples}")
    if num_local > 0 and (local_samples is None or local_samples < 1):
        raise ValueError(
            "local_samples must be >= 1 when num_local > 0, got "
            f"{local_samples}"
        )
    if reference_samples is not None and reference_samples < 1:
        raise ValueError(
            f"reference_samples must be >= 1 or None, got {reference_samples}"
        )
    lengths = [global_samples] * num_global + [local_samples] * num_local
    if reference_samples is not None:
        lengths.append(reference_samples)
    keys = ssl_view_keys(num_global, num_local, reference_samples is not None)
    return SSLViewsPipeline(lengths, keys, key, seed=seed, index_key=index_key)
