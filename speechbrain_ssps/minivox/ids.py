"""VoxCeleb-style speaker ids and YouTube-like video ids of MiniVox."""

from typing import List

from speechbrain_ssps.minivox.seeds import _TAG_VIDEO_ID, _rng

FIRST_SPEAKER_NUMBER = 10001
VIDEO_ID_ALPHABET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)
VIDEO_ID_LENGTH = 11


def speaker_id(index: int) -> str:
    """VoxCeleb-style speaker id of the ``index``-th speaker (from 0).

    Arguments
    ---------
    index : int
        Speaker index.

    Returns
    -------
    str
        ``id10001`` for index 0, and so on.

    Example
    -------
    >>> speaker_id(0), speaker_id(41)
    ('id10001', 'id10042')
    """
    return f"id{FIRST_SPEAKER_NUMBER + index:05d}"


def video_ids(seed: int, speaker_index: int, num_videos: int) -> List[str]:
    """YouTube-like video ids of one speaker, distinct ignoring case.

    Arguments
    ---------
    seed : int
        Corpus seed.
    speaker_index : int
        Speaker index.
    num_videos : int
        How many ids.

    Returns
    -------
    list of str
        ``num_videos`` ids of 11 characters from ``[A-Za-z0-9_-]``.

    Example
    -------
    >>> ids = video_ids(0, 0, 3)
    >>> [len(v) for v in ids]
    [11, 11, 11]
    """
    ids: List[str] = []
    seen = set()
    for video in range(num_videos):
        attempt = 0
        while True:
            rng = _rng(seed, _TAG_VIDEO_ID, speaker_index, video, attempt)
            letters = rng.integers(len(VIDEO_ID_ALPHABET), size=VIDEO_ID_LENGTH)
            vid = "".join(VIDEO_ID_ALPHABET[i] for i in letters)
            if vid.lower() not in seen:
                break
            attempt += 1
        seen.add(vid.lower())
        ids.append(vid)
    return ids
