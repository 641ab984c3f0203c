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
"""

from typing import Callable, List, Optional, Sequence

import torch
from speechbrain.dataio.dataio import read_audio
from speechbrain.utils.data_pipeline import provides, takes


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


def make_ssl_views_pipeline(
    num_global: int,
    global_samples: int,
    num_local: int = 0,
    local_samples: Optional[int] = None,
    reference_samples: Optional[int] = None,
    key: str = "wav",
) -> Callable:
    """Build the dynamic item that turns an audio path into SSL views.

    The audio is read once with ``speechbrain.dataio.dataio.read_audio``
    (a path, or a dict with ``file``/``start``/``stop``), then
    ``num_global`` crops of ``global_samples``, ``num_local`` crops of
    ``local_samples`` and, if ``reference_samples`` is set, one reference
    crop are cut independently. Crops use torch's global RNG, which PyTorch
    seeds differently in each DataLoader worker.

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

    Returns
    -------
    callable
        A generator function decorated with ``takes(key)`` and
        ``provides(*ssl_view_keys(...))``, for
        ``speechbrain.dataio.dataset.add_dynamic_item``.

    Example
    -------
    >>> import soundfile as sf
    >>> path = str(getfixture("tmpdir") / "utt.wav")
    >>> sf.write(path, torch.randn(800).numpy(), 16000)
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({"utt1": {"wav": path}})
    >>> pipeline = make_ssl_views_pipeline(2, 400, 1, 200, 500)
    >>> data.add_dynamic_item(pipeline)
    >>> data.set_output_keys(ssl_view_keys(2, 1, with_reference=True))
    >>> {k: v.shape[0] for k, v in data[0].items()}
    {'view_0': 400, 'view_1': 400, 'view_2': 200, 'ref': 500}
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

    @takes(key)
    @provides(*keys)
    def ssl_views_pipeline(wav):
        signal = read_audio(wav)
        if signal.dim() != 1 or signal.shape[0] == 0:
            raise ValueError(
                f"audio {wav!r} must be mono and non-empty, got shape "
                f"{tuple(signal.shape)}"
            )
        for crop in multi_crop(signal, lengths):
            # Own the memory: a slice would keep the whole signal alive.
            yield crop.clone()

    return ssl_views_pipeline
