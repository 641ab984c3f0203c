"""The test trial lists of a VoxCeleb preparation.

The cleaned VoxCeleb1 lists are found by name in ``<test_root>/meta/``
(:data:`STANDARD_TRIAL_LISTS`: O, E and H); other lists are given by path.
:func:`resolve_trial_lists` picks the test root and the path of each list,
:func:`read_trial_file` parses one list and checks its IDs,
:func:`locate_test_utterances` finds every trial utterance on disk, and
:func:`write_trial_file` writes a list normalised to
``<label> <enrol_ID> <test_ID>`` (what verify.py and the epoch validation
read).

Authors
-------
* SSPS contributors 2025
"""

import os
import re
from typing import Dict, List, Optional, Tuple

from speechbrain_ssps.corpus_scan import AUDIO_EXTENSIONS
from speechbrain_ssps.trials import read_trials

STANDARD_TRIAL_LISTS = {
    "O": "veri_test2.txt",
    "E": "list_test_all2.txt",
    "H": "list_test_hard2.txt",
}
_NAME = re.compile(r"[A-Za-z0-9_-]+")

#: ``(label, enrol_ID, test_ID, line number)``.
NumberedTrial = Tuple[int, str, str, int]


def standard_lists(root: str) -> Dict[str, str]:
    """The standard trial lists present in ``<root>/meta/``.

    Arguments
    ---------
    root : str
        A data root.

    Returns
    -------
    dict
        ``{name: path}`` of the lists found.

    Example
    -------
    >>> standard_lists(str(getfixture("tmp_path")))
    {}
    """
    found = {}
    for name, filename in STANDARD_TRIAL_LISTS.items():
        path = os.path.join(root, "meta", filename)
        if os.path.isfile(path):
            found[name] = path
    return found


def resolve_trial_lists(
    roots: List[str],
    trial_lists: Optional[Dict[str, Optional[str]]],
    test_folder: Optional[str],
) -> Tuple[str, Dict[str, str]]:
    """Chooses the test root and the absolute path of each trial list.

    Arguments
    ---------
    roots : list of str
        The data roots.
    trial_lists : dict, optional
        ``{name: path or None}`` (None: the standard file of that name);
        None: every standard list of the test root.
    test_folder : str, optional
        The root of the trial utterances; default: the first data root
        with a standard list, else the first data root.

    Returns
    -------
    test_root : str
    paths : dict
        ``{name: absolute path}``.

    Example
    -------
    >>> root = str(getfixture("tmp_path"))
    >>> resolve_trial_lists([root], None, None) == (root, {})
    True
    """
    if test_folder is not None:
        test_root = os.path.abspath(test_folder)
        if not os.path.isdir(test_root):
            raise FileNotFoundError(f"test_folder not found: {test_root}")
    else:
        with_lists = [root for root in roots if standard_lists(root)]
        test_root = (with_lists or roots)[0]
    if trial_lists is None:
        return test_root, standard_lists(test_root)
    if not isinstance(trial_lists, dict):
        raise TypeError(
            "trial_lists must be a dict {name: path or None}, got "
            f"{type(trial_lists).__name__}"
        )
    paths = {}
    for name, path in trial_lists.items():
        if not _NAME.fullmatch(str(name)):
            raise ValueError(
                f"trial_lists name {name!r} must use letters, digits, "
                "'_' or '-' (it names the output file)"
            )
        if path is None:
            if name not in STANDARD_TRIAL_LISTS:
                raise ValueError(
                    f"trial_lists[{name!r}] needs a path: only "
                    f"{sorted(STANDARD_TRIAL_LISTS)} have a standard file"
                )
            path = os.path.join(test_root, "meta", STANDARD_TRIAL_LISTS[name])
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Trial list {name!r} not found: {path}")
        paths[str(name)] = path
    return test_root, paths


def read_trial_file(path: str) -> List[NumberedTrial]:
    """Parses a trial list, checking that IDs are ``<spk>/<video>/<utt>``.

    Arguments
    ---------
    path : str
        The list.

    Returns
    -------
    list of (int, str, str, int)
        Label, enrol ID, test ID and line number of each trial.

    Example
    -------
    >>> path = getfixture("tmp_path") / "t.txt"
    >>> _ = path.write_text("1 a/b/c.wav a/d/e.wav\\n")
    >>> read_trial_file(str(path))
    [(1, 'a/b/c', 'a/d/e', 1)]
    """
    trials = read_trials(path, with_line_numbers=True)
    for _, enrol, test, line_no in trials:
        for utt_id in (enrol, test):
            parts = utt_id.split("/")
            if len(parts) != 3 or not all(parts):
                raise ValueError(
                    f"{path}, line {line_no}: {utt_id!r} is not "
                    "<speaker>/<video>/<utt>"
                )
    if not trials:
        raise ValueError(f"Trial list is empty: {path}")
    return trials


def locate_test_utterances(
    trials: Dict[str, List[NumberedTrial]],
    trial_paths: Dict[str, str],
    test_index: Dict[str, str],
    test_root: str,
) -> Dict[str, str]:
    """Maps every utterance of the trial lists to its audio file.

    Arguments
    ---------
    trials : dict
        ``{name: trials}`` as read by :func:`read_trial_file`.
    trial_paths : dict
        ``{name: path}`` of the lists (for the messages).
    test_index : dict
        Utterance ID to audio file, of the test root.
    test_root : str
        The test root (for the messages).

    Returns
    -------
    dict
        Utterance ID to audio file, for the trials' utterances.

    Example
    -------
    >>> locate_test_utterances({"O": [(1, "a", "b", 1)]}, {"O": "o.txt"},
    ...                        {"a": "/a.wav", "b": "/b.wav"}, "/")
    {'a': '/a.wav', 'b': '/b.wav'}
    """
    paths = {}
    for name, lines in trials.items():
        for _, enrol, test, line_no in lines:
            for utt_id in (enrol, test):
                if utt_id in paths:
                    continue
                if utt_id not in test_index:
                    looked = os.path.join(test_root, "wav", utt_id)
                    raise FileNotFoundError(
                        f"{trial_paths[name]}, line {line_no}: {utt_id} not "
                        f"found on disk (looked for {looked}"
                        f"{{{','.join(AUDIO_EXTENSIONS)}}})"
                    )
                paths[utt_id] = test_index[utt_id]
    return paths


def write_trial_file(path: str, lines: List[NumberedTrial]) -> None:
    """Writes a normalised trial list atomically.

    Arguments
    ---------
    path : str
        The output (written as ``path + ".tmp"``, then renamed).
    lines : list of (int, str, str, int)
        As read by :func:`read_trial_file`.

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "trials_O.txt")
    >>> write_trial_file(path, [(0, "a/b/c", "d/e/f", 1)])
    >>> open(path).read()
    '0 a/b/c d/e/f\\n'
    """
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for label, enrol, test, _ in lines:
            f.write(f"{label} {enrol} {test}\n")
    os.replace(tmp, path)
