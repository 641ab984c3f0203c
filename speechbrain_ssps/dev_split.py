"""A dev split of training speakers, for honest checkpoint selection.

``voxceleb_prepare.py --dev_speakers=N`` holds ``N`` training speakers out
of ``train.csv`` (every utterance of each; never a speaker of the test
lists, which are removed from training first) and writes them to
``dev.csv`` (same columns) with a trial list ``dev_trials.txt`` in the
format of the prepared test lists (``<label> <enrol_ID> <test_ID>``).
``train.py --valid_trials=dev`` then validates on it at the end of epochs,
and ``export.py --select best_dev`` picks the checkpoint(s) with the lowest
dev EER; a test list is never used for either.

The choice is deterministic: the speakers are a seeded sample of the sorted
speaker names, the trial utterances a seeded sample of at most
``max_utterances`` per dev speaker (this bounds the validation cost to about
``N * max_utterances`` embedded segments), and the trials a seeded, balanced
draw of target pairs (same speaker; different videos when the speaker has
several) and non-target pairs (different speakers), with no pair twice.

The file is named ``dev_trials.txt``, not ``trials_dev.txt``: verify.py
evaluates every ``trials_*.txt`` of the prep folder against ``test.csv``,
and dev utterances are not there.

Authors
-------
* SSPS contributors 2025
"""

import os
from typing import Dict, Iterable, List, Sequence, Set, Tuple

import numpy as np

from speechbrain_ssps.trial_lists import write_trial_file

DEV_CSV = "dev.csv"
DEV_TRIALS = "dev_trials.txt"
#: ``--valid_trials`` value of the dev split.
DEV_LIST = "dev"
#: Trials in the dev list (half target, half non-target) by default.
DEFAULT_TRIALS = 20000
#: Utterances of each dev speaker the trial list may use by default.
DEFAULT_MAX_UTTERANCES = 50
DEFAULT_SEED = 1986
# Up to this many trial utterances, every pair is enumerated.
_ENUMERATE_UP_TO = 2000

Trial = Tuple[int, str, str]


def validation_files(save_folder: str, name: str) -> Tuple[str, str]:
    """Trial list and manifest of ``--valid_trials=<name>``.

    Arguments
    ---------
    save_folder : str
        The preparation folder.
    name : str
        ``dev`` (the dev split) or a test list name (``O``, ``E``, ...).

    Returns
    -------
    trials : str
        ``dev_trials.txt`` or ``trials_<name>.txt``.
    manifest : str
        ``dev.csv`` or ``test.csv``.

    Example
    -------
    >>> validation_files("save", "dev")
    ('save/dev_trials.txt', 'save/dev.csv')
    >>> validation_files("save", "O")
    ('save/trials_O.txt', 'save/test.csv')
    """
    if name == DEV_LIST:
        return (
            os.path.join(save_folder, DEV_TRIALS),
            os.path.join(save_folder, DEV_CSV),
        )
    return (
        os.path.join(save_folder, f"trials_{name}.txt"),
        os.path.join(save_folder, "test.csv"),
    )


def missing_dev_message(trials_path: str) -> str:
    """Why ``--valid_trials=dev`` cannot run, and what fixes it.

    Arguments
    ---------
    trials_path : str
        The dev trial list that is missing.

    Returns
    -------
    str
        The error message.

    Example
    -------
    >>> missing_dev_message("s/dev_trials.txt").split(":")[0]
    '--valid_trials=dev'
    """
    return (
        f"--valid_trials=dev: no {trials_path}: the preparation has no dev "
        "split. Hold training speakers out with --dev_speakers=N (on "
        "train.py, or voxceleb_prepare.py --dev_speakers N then "
        "--skip_prep=True)"
    )


def check_dev_options(
    num_dev: int, num_trials: int, max_utterances: int
) -> None:
    """Raises a ValueError naming the bad ``--dev_*`` option.

    Arguments
    ---------
    num_dev : int
        ``--dev_speakers`` (0: no dev split).
    num_trials : int
        ``--dev_trials``.
    max_utterances : int
        ``--dev_utterances``.

    Example
    -------
    >>> check_dev_options(-1, 10, 5)
    Traceback (most recent call last):
     ...
    ValueError: --dev_speakers=-1: must be >= 0 (0: no dev split)
    """
    if int(num_dev) != num_dev or num_dev < 0:
        raise ValueError(
            f"--dev_speakers={num_dev}: must be >= 0 (0: no dev split)"
        )
    if num_dev == 1:
        raise ValueError(
            "--dev_speakers=1: the dev trial list needs non-target trials, "
            "so at least 2 dev speakers"
        )
    if num_trials < 2:
        raise ValueError(
            f"--dev_trials={num_trials}: must be >= 2 (one target and one "
            "non-target trial)"
        )
    if max_utterances < 2:
        raise ValueError(
            f"--dev_utterances={max_utterances}: must be >= 2 (a target "
            "trial needs two utterances of a speaker)"
        )


def choose_dev_speakers(
    speakers: Iterable[str], num_dev: int, seed: int = DEFAULT_SEED
) -> List[str]:
    """A seeded sample of ``num_dev`` speakers, sorted.

    Arguments
    ---------
    speakers : iterable of str
        The training speakers (duplicates and order do not matter).
    num_dev : int
        How many to hold out; at least one speaker must stay in training.
    seed : int
        Seed of the choice.

    Returns
    -------
    list of str
        The dev speakers.

    Example
    -------
    >>> choose_dev_speakers(["c", "a", "b", "a", "d"], 2, seed=0)
    ['c', 'd']
    >>> choose_dev_speakers(["a", "b"], 2)
    Traceback (most recent call last):
     ...
    ValueError: --dev_speakers=2: the training data has only 2 speakers \
(test speakers already removed); at least one must stay in training
    """
    pool = sorted(set(speakers))
    if num_dev >= len(pool):
        raise ValueError(
            f"--dev_speakers={num_dev}: the training data has only "
            f"{len(pool)} speakers (test speakers already removed); at "
            "least one must stay in training"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=num_dev, replace=False)
    return sorted(pool[i] for i in chosen)


def make_dev_trials(
    utterances: Sequence[Tuple[str, str, str]],
    num_trials: int = DEFAULT_TRIALS,
    max_utterances: int = DEFAULT_MAX_UTTERANCES,
    seed: int = DEFAULT_SEED,
) -> List[Trial]:
    """A balanced, seeded trial list over the dev utterances.

    Arguments
    ---------
    utterances : sequence of (ID, speaker, video)
        Every utterance of the dev speakers.
    num_trials : int
        Trials wanted; fewer (still balanced) when the utterances allow
        fewer distinct pairs.
    max_utterances : int
        At most this many utterances of each speaker are used.
    seed : int
        Seed of the utterance and pair draws.

    Returns
    -------
    list of (int, str, str)
        ``(label, enrol_ID, test_ID)``, as many targets as non-targets,
        sorted by (enrol, test).

    Example
    -------
    >>> utts = [(f"{s}/v{v}/{u}", s, f"v{v}") for s in ("a", "b")
    ...         for v in (1, 2) for u in (1, 2)]
    >>> trials = make_dev_trials(utts, num_trials=6, seed=0)
    >>> sorted(label for label, _, _ in trials)
    [0, 0, 0, 1, 1, 1]
    """
    rng = np.random.default_rng(seed)
    ids, speaker, video = _subsample(utterances, max_utterances, rng)
    if len(set(speaker.tolist())) < 2:
        raise ValueError(
            "--dev_speakers: the dev trial list needs at least 2 speakers "
            "for non-target trials"
        )
    per_class = num_trials // 2
    if len(ids) <= _ENUMERATE_UP_TO:
        targets, nontargets = _enumerated_pairs(speaker, video, per_class, rng)
    else:
        targets, nontargets = _drawn_pairs(speaker, video, per_class, rng)
    count = min(len(targets), len(nontargets))
    targets = [targets[k] for k in rng.permutation(len(targets))]
    nontargets = [nontargets[k] for k in rng.permutation(len(nontargets))]
    if count == 0:
        raise ValueError(
            "--dev_speakers: no dev speaker has two utterances, so the dev "
            "trial list can hold no target trial; choose more or other "
            "speakers (--dev_speakers, --dev_seed)"
        )
    trials = [(1, ids[i], ids[j]) for i, j in targets[:count]]
    trials += [(0, ids[i], ids[j]) for i, j in nontargets[:count]]
    return sorted(trials, key=lambda t: (t[1], t[2], t[0]))


def _subsample(
    utterances: Sequence[Tuple[str, str, str]],
    max_utterances: int,
    rng: np.random.Generator,
) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """At most max_utterances per speaker: IDs, speaker and video codes."""
    by_speaker: Dict[str, List[Tuple[str, str]]] = {}
    for utt_id, spk, vid in sorted(utterances):
        by_speaker.setdefault(spk, []).append((utt_id, vid))
    ids, speaker, video = [], [], []
    videos: Dict[Tuple[str, str], int] = {}
    for code, spk in enumerate(sorted(by_speaker)):
        items = by_speaker[spk]
        if len(items) > max_utterances:
            keep = rng.choice(len(items), size=max_utterances, replace=False)
            items = [items[i] for i in sorted(keep)]
        for utt_id, vid in items:
            ids.append(utt_id)
            speaker.append(code)
            video.append(videos.setdefault((spk, vid), len(videos)))
    return ids, np.asarray(speaker), np.asarray(video)


def _enumerated_pairs(
    speaker: np.ndarray,
    video: np.ndarray,
    count: int,
    rng: np.random.Generator,
) -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]:
    """Up to count target and non-target pairs drawn from all pairs."""
    first, second = np.triu_indices(len(speaker), k=1)
    same = speaker[first] == speaker[second]
    cross_video = same & (video[first] != video[second])
    target = cross_video if cross_video.any() else same
    out = []
    for mask in (target, ~same):
        pool = np.flatnonzero(mask)
        picked = rng.choice(pool, size=min(count, len(pool)), replace=False)
        out.append([(int(first[k]), int(second[k])) for k in picked])
    return out[0], out[1]


def _drawn_pairs(
    speaker: np.ndarray,
    video: np.ndarray,
    count: int,
    rng: np.random.Generator,
    rounds: int = 200,
) -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]:
    """Up to count target and non-target pairs by rejection sampling.

    Targets: a random utterance and another of its speaker (another video
    when the data has any cross-video pair); non-targets: two random
    utterances of different speakers. Duplicates are rejected.
    """
    order = np.argsort(speaker, kind="stable")
    starts = np.searchsorted(speaker[order], speaker[order], side="left")
    ends = np.searchsorted(speaker[order], speaker[order], side="right")
    start_of = np.empty_like(starts)
    size_of = np.empty_like(starts)
    start_of[order], size_of[order] = starts, ends - starts
    multi = np.flatnonzero(size_of > 1)
    cross = len(set(zip(speaker.tolist(), video.tolist()))) > len(
        set(speaker.tolist())
    )
    targets: Set[Tuple[int, int]] = set()
    nontargets: Set[Tuple[int, int]] = set()
    batch = max(64, 2 * count)
    for _ in range(rounds):
        if len(targets) >= count and len(nontargets) >= count:
            break
        if len(targets) < count and len(multi):
            i = rng.choice(multi, size=batch)
            j = order[start_of[i] + rng.integers(0, size_of[i])]
            ok = (i != j) & ((video[i] != video[j]) | (not cross))
            _add_pairs(targets, i[ok], j[ok], count)
        if len(nontargets) < count:
            i = rng.integers(0, len(speaker), size=batch)
            j = rng.integers(0, len(speaker), size=batch)
            ok = speaker[i] != speaker[j]
            _add_pairs(nontargets, i[ok], j[ok], count)
    return sorted(targets), sorted(nontargets)


def _add_pairs(
    pairs: Set[Tuple[int, int]], i: np.ndarray, j: np.ndarray, count: int
) -> None:
    """Adds unordered pairs (i, j) until pairs holds count of them."""
    for a, b in zip(i.tolist(), j.tolist()):
        if len(pairs) >= count:
            return
        pairs.add((min(a, b), max(a, b)))


def write_dev_trials(path: str, trials: Sequence[Trial]) -> None:
    """Writes ``<label> <enrol> <test>`` lines atomically.

    Arguments
    ---------
    path : str
        The trial file (written as ``path + ".tmp"``, then renamed).
    trials : sequence of (int, str, str)
        As returned by :func:`make_dev_trials`.

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "dev_trials.txt")
    >>> write_dev_trials(path, [(1, "a/v/1", "a/w/2")])
    >>> open(path).read()
    '1 a/v/1 a/w/2\\n'
    """
    write_trial_file(path, [(label, e, t, 0) for label, e, t in trials])
