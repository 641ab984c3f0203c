"""Trial lists of MiniVox: balanced target and non-target pairs.

Only test speakers appear in the list. Half of the trials are targets,
which always pair two different videos of one speaker (so a channel can
never give a target away); the other half pair utterances of two
different speakers.
"""

import math
from typing import Tuple

import numpy as np

from speechbrain_ssps.minivox.options import _opt


def trial_capacity(
    num_speakers: int, num_videos: int, num_utterances: int
) -> Tuple[int, int]:
    """Numbers of distinct target (cross-video) and non-target pairs.

    Arguments
    ---------
    num_speakers : int
        Number of test speakers.
    num_videos : int
        Videos per speaker.
    num_utterances : int
        Utterances per video.

    Returns
    -------
    tuple of int
        ``(targets, non_targets)`` unordered pairs available.

    Example
    -------
    >>> trial_capacity(3, 2, 2)
    (12, 48)
    """
    per_speaker = num_videos * num_utterances
    targets = num_speakers * math.comb(num_videos, 2) * num_utterances**2
    non_targets = math.comb(num_speakers, 2) * per_speaker**2
    return targets, non_targets


def sample_trials(
    num_speakers: int,
    num_videos: int,
    num_utterances: int,
    num_trials: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw a balanced verification list without repeated pairs.

    Utterances are numbered ``(speaker * num_videos + video) *
    num_utterances + utterance``. Half of the trials are targets, spread as
    evenly as possible over the speakers, each pairing two different videos
    of one speaker; the other half are non-targets drawn uniformly among
    the pairs of utterances of different speakers. Every unordered pair
    occurs at most once, and which side is the enrolment is random.

    Arguments
    ---------
    num_speakers : int
        Number of test speakers (>= 2).
    num_videos : int
        Videos per speaker (>= 2).
    num_utterances : int
        Utterances per video (>= 1).
    num_trials : int
        Even number of trials, at most twice ``min(trial_capacity(...))``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``[num_trials, 3]`` int64 rows ``(label, enrol, test)``, targets
        first.

    Example
    -------
    >>> trials = sample_trials(2, 2, 1, 4, np.random.default_rng(0))
    >>> trials[:, 0].tolist()
    [1, 1, 0, 0]
    """
    targets_max, non_targets_max = trial_capacity(
        num_speakers, num_videos, num_utterances
    )
    half = num_trials // 2
    if num_trials < 2 or num_trials % 2:
        raise ValueError(
            f"{_opt('num_trials')} must be a positive even number, "
            f"got {num_trials}"
        )
    if half > min(targets_max, non_targets_max):
        raise ValueError(
            f"{_opt('num_trials')}={num_trials} is more than this test set "
            f"allows: at most {2 * min(targets_max, non_targets_max)} "
            f"({targets_max} cross-video target pairs, {non_targets_max} "
            "non-target pairs)"
        )
    per_speaker = num_videos * num_utterances
    # 1. Targets: an even quota per speaker, ranks unranked into pairs of
    #    (video a < video b, utterance in a, utterance in b).
    quota = np.full(num_speakers, half // num_speakers)
    quota[rng.permutation(num_speakers)[: half % num_speakers]] += 1
    video_a, video_b = np.triu_indices(num_videos, 1)
    pairs_per_speaker = video_a.shape[0] * num_utterances**2
    enrol, test = [], []
    for speaker in range(num_speakers):
        rank = rng.choice(pairs_per_speaker, int(quota[speaker]), False)
        vp, rest = np.divmod(rank, num_utterances**2)
        ua, ub = np.divmod(rest, num_utterances)
        base = speaker * per_speaker
        enrol.append(base + video_a[vp] * num_utterances + ua)
        test.append(base + video_b[vp] * num_utterances + ub)
    # 2. Non-targets: ranks over (speaker a < speaker b, utt of a, utt of b).
    spk_a, spk_b = np.triu_indices(num_speakers, 1)
    rank = rng.choice(spk_a.shape[0] * per_speaker**2, half, False)
    sp, rest = np.divmod(rank, per_speaker**2)
    ia, ib = np.divmod(rest, per_speaker)
    enrol.append(spk_a[sp] * per_speaker + ia)
    test.append(spk_b[sp] * per_speaker + ib)
    enrol_all = np.concatenate(enrol).astype(np.int64)
    test_all = np.concatenate(test).astype(np.int64)
    swap = rng.random(num_trials) < 0.5
    labels = np.repeat([1, 0], half)
    return np.stack(
        [
            labels,
            np.where(swap, test_all, enrol_all),
            np.where(swap, enrol_all, test_all),
        ],
        axis=1,
    )


def default_num_trials(
    num_speakers: int, num_videos: int, num_utterances: int
) -> int:
    """Default trial count: 8 per test utterance, within the capacity.

    The arguments are those of :func:`trial_capacity`.

    Returns
    -------
    int
        An even number of trials (VoxCeleb1-O has about 7.7 per utterance).

    Example
    -------
    >>> default_num_trials(10, 4, 5)
    1600
    """
    capacity = min(trial_capacity(num_speakers, num_videos, num_utterances))
    wanted = 8 * num_speakers * num_videos * num_utterances
    return 2 * min(wanted // 2, capacity)
