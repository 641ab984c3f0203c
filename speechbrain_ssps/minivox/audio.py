"""Audio format of the MiniVox files: 16 kHz mono 16-bit PCM WAV."""

from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def write_pcm16(path: Union[str, Path], wav: np.ndarray) -> int:
    """Write samples in [-1, 1] as a 16 kHz mono PCM-16 WAV file.

    Arguments
    ---------
    path : str or Path
        The file to write.
    wav : numpy.ndarray
        1-D samples; they are rounded to the nearest 16-bit step.

    Returns
    -------
    int
        The number of samples written.

    Example
    -------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "00001.wav")
    ...     n = write_pcm16(path, np.zeros(160, dtype=np.float32))
    ...     info = sf.info(path)
    >>> n, info.samplerate, info.subtype
    (160, 16000, 'PCM_16')
    """
    pcm = np.round(wav * 32767.0).astype(np.int16)
    sf.write(path, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return pcm.shape[0]
