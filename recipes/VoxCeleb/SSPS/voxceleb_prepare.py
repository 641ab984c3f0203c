"""Writes the VoxCeleb manifests used by the SSPS recipe.

The input is one or more dataset roots (VoxCeleb1, VoxCeleb2, or any corpus
with the same shape) laid out as ``<root>/wav/<speaker>/<video>/<utt>.wav``
(``.flac`` also accepted). The output, in ``save_folder``, is

* ``train.csv``: one row per training utterance, header
  ``ID,duration,wav,spk_id,video_id``, sorted by ``ID``. The row order defines
  the utterance index that SSPS uses for its reference queue.
* ``test.csv``: the utterances named by the trial lists (same columns).
* ``trials_<name>.txt``: each trial list normalised to
  ``<label> <enrol_ID> <test_ID>``, with IDs matching ``test.csv``.
* ``opt_voxceleb_prepare.pkl``: the options of the run, so that a second call
  with the same options skips the work.

``ID`` is ``<speaker>/<video>/<utt>`` without extension, ``wav`` the absolute
path, ``duration`` the file length in seconds read from the file header, and
``video_id`` the video folder name. Speakers that appear in a used trial list
are removed from training. The cleaned VoxCeleb1 lists are found by name in
``<test_root>/meta/``: ``veri_test2.txt`` (O), ``list_test_all2.txt`` (E) and
``list_test_hard2.txt`` (H).

VoxCeleb2 ships ``.m4a`` files, which soundfile cannot read: convert them
first with ``convert_to_wav.py`` (same folder).

Usage
-----
python voxceleb_prepare.py --data_folder /data/vox2,/data/vox1 \\
    --save_folder results/prep --trial O

Authors
-------
* SSPS recipe contributors 2025
"""

import argparse
import csv
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple, Union

import soundfile as sf
from speechbrain.dataio.dataio import load_pkl, save_pkl
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.trials import read_trials

logger = get_logger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac")
M4A_EXTENSION = ".m4a"
STANDARD_TRIAL_LISTS = {
    "O": "veri_test2.txt",
    "E": "list_test_all2.txt",
    "H": "list_test_hard2.txt",
}
CSV_HEADER = ["ID", "duration", "wav", "spk_id", "video_id"]
OPT_FILE = "opt_voxceleb_prepare.pkl"
_TRIAL_NAME = re.compile(r"[A-Za-z0-9_-]+")


def prepare_voxceleb(
    data_folder: Union[str, Sequence[str]],
    save_folder: str,
    trial_lists: Optional[Dict[str, Optional[str]]] = None,
    test_folder: Optional[str] = None,
    skip_prep: bool = False,
    sample_rate: Optional[int] = 16000,
    num_workers: int = 8,
) -> Dict[str, str]:
    """Writes ``train.csv``, ``test.csv`` and the trial lists.

    Arguments
    ---------
    data_folder : str or list of str
        Dataset root(s), as a list or a comma-separated string. Each holds
        ``wav/<speaker>/<video>/<utt>.wav`` (or ``.flac``).
    save_folder : str
        Where the manifests are written (created if missing).
    trial_lists : dict, optional
        Trial lists to use, ``{name: path}``. A ``None`` path means the
        standard file of that name (``O``, ``E`` or ``H``) in
        ``<test_root>/meta/``. When omitted, every standard list present in
        ``<test_root>/meta/`` is used.
    test_folder : str, optional
        Root holding the trial utterances (``<test_folder>/wav/...``). By
        default, the first data root whose ``meta/`` holds a standard list,
        else the first data root.
    skip_prep : bool
        If True, write nothing and return the outputs already present.
    sample_rate : int, optional
        Expected sample rate of every file; a file at another rate is an
        error. ``None`` accepts any rate.
    num_workers : int
        Threads reading the file headers (does not change the outputs).

    Returns
    -------
    dict
        ``{"train": path, "test": path, "trials_<name>": path, ...}``
        (``test`` and the trial entries only when trial lists are used).

    Example
    -------
    >>> import numpy as np
    >>> root = getfixture("tmp_path") / "vox"
    >>> for spk, vid in [("id1", "v1"), ("id2", "v2")]:
    ...     (root / "wav" / spk / vid).mkdir(parents=True)
    ...     path = str(root / "wav" / spk / vid / "00001.wav")
    ...     sf.write(path, np.zeros(1600, dtype="float32"), 16000)
    >>> out = prepare_voxceleb(str(root), str(root / "prep"))
    >>> print(open(out["train"]).read().splitlines()[0])
    ID,duration,wav,spk_id,video_id
    """
    save_folder = os.path.abspath(save_folder)
    if skip_prep:
        return _existing_outputs(save_folder)

    # 1. Resolve and check every input path.
    roots = _split_roots(data_folder)
    test_root, trial_paths = _resolve_trials(roots, trial_lists, test_folder)
    conf = {
        "data_folder": roots,
        "save_folder": save_folder,
        "test_folder": test_root,
        "trial_lists": trial_paths,
        "sample_rate": sample_rate,
    }
    outputs = _expected_outputs(save_folder, trial_paths)
    opt_path = os.path.join(save_folder, OPT_FILE)
    if _is_prepared(opt_path, conf, outputs):
        logger.info(
            "VoxCeleb manifests in %s match these options; skipping "
            "preparation.",
            save_folder,
        )
        return outputs

    # 2. Index the audio of every root (file names only, no reads).
    indexes = {root: _scan_root(root) for root in roots}
    all_train: Dict[str, str] = {}
    for root in roots:
        for utt_id, path in indexes[root].items():
            if utt_id in all_train:
                raise ValueError(
                    f"Utterance {utt_id} exists in two data roots: "
                    f"{all_train[utt_id]} and {path}"
                )
            all_train[utt_id] = path

    # 3. Read the trial lists and find their utterances in the test root.
    trials = {
        name: _read_trial_file(path) for name, path in trial_paths.items()
    }
    test_paths: Dict[str, str] = {}
    if trials:
        test_index = indexes.get(test_root)
        if test_index is None:
            test_index = _scan_root(test_root)
        test_paths = _locate_test_utterances(
            trials, trial_paths, test_index, test_root
        )
    test_speakers = {utt_id.split("/")[0] for utt_id in test_paths}

    # 4. Drop the test speakers from training.
    train_ids = sorted(
        utt_id
        for utt_id in all_train
        if utt_id.split("/")[0] not in test_speakers
    )
    n_removed = len(all_train) - len(train_ids)
    if not train_ids:
        raise ValueError(
            f"No training utterance left in {roots}: all "
            f"{len(all_train)} belong to the {len(test_speakers)} speakers "
            f"of the trial lists {sorted(trial_paths)}. Pass trial_lists "
            "(e.g. {'O': None}) to use fewer lists, or add a data root."
        )

    # 5. Durations from the file headers.
    train_rows = _make_rows(
        train_ids, all_train, sample_rate, num_workers, drop_empty=True
    )
    test_rows = _make_rows(
        sorted(test_paths),
        test_paths,
        sample_rate,
        num_workers,
        drop_empty=False,
    )

    # 6. Write everything, the options file last.
    os.makedirs(save_folder, exist_ok=True)
    _write_csv(outputs["train"], train_rows)
    if trials:
        _write_csv(outputs["test"], test_rows)
        for name, lines in trials.items():
            _write_trials(outputs[f"trials_{name}"], lines)
    else:
        logger.warning(
            "No trial list found (looked in %s/meta/ for %s): test.csv and "
            "trial files are not written.",
            test_root,
            ", ".join(STANDARD_TRIAL_LISTS.values()),
        )
    save_pkl(conf, opt_path)
    logger.info(
        "VoxCeleb prepared in %s: %d training utterances (%d speakers, "
        "%d utterances of %d test speakers removed), %d test utterances, "
        "trial lists %s.",
        save_folder,
        len(train_rows),
        len({row[3] for row in train_rows}),
        n_removed,
        len(test_speakers),
        len(test_rows),
        {name: len(lines) for name, lines in trials.items()},
    )
    return outputs


def _split_roots(data_folder: Union[str, Sequence[str]]) -> List[str]:
    """Turns the data_folder argument into a list of absolute roots."""
    if isinstance(data_folder, str):
        items = data_folder.split(",")
    else:
        items = list(data_folder)
    names = [str(item).strip() for item in items]
    roots = [os.path.abspath(name) for name in names if name]
    if not roots:
        raise ValueError(f"data_folder names no folder: {data_folder!r}")
    if len(set(roots)) != len(roots):
        raise ValueError(f"data_folder lists a folder twice: {roots}")
    for root in roots:
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Data folder not found: {root}")
    return roots


def _resolve_trials(
    roots: List[str],
    trial_lists: Optional[Dict[str, Optional[str]]],
    test_folder: Optional[str],
) -> Tuple[str, Dict[str, str]]:
    """Chooses the test root and the absolute path of each trial list."""
    if test_folder is not None:
        test_root = os.path.abspath(test_folder)
        if not os.path.isdir(test_root):
            raise FileNotFoundError(f"test_folder not found: {test_root}")
    else:
        test_root = next(
            (root for root in roots if _standard_lists(root)), roots[0]
        )

    if trial_lists is None:
        return test_root, _standard_lists(test_root)
    if not isinstance(trial_lists, dict):
        raise TypeError(
            "trial_lists must be a dict {name: path or None}, got "
            f"{type(trial_lists).__name__}"
        )
    paths = {}
    for name, path in trial_lists.items():
        if not _TRIAL_NAME.fullmatch(str(name)):
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


def _standard_lists(root: str) -> Dict[str, str]:
    """The standard trial lists present in ``<root>/meta/``."""
    found = {}
    for name, filename in STANDARD_TRIAL_LISTS.items():
        path = os.path.join(root, "meta", filename)
        if os.path.isfile(path):
            found[name] = path
    return found


def _expected_outputs(
    save_folder: str, trial_paths: Dict[str, str]
) -> Dict[str, str]:
    """Paths of the files a preparation with these lists writes."""
    outputs = {"train": os.path.join(save_folder, "train.csv")}
    if trial_paths:
        outputs["test"] = os.path.join(save_folder, "test.csv")
        for name in trial_paths:
            outputs[f"trials_{name}"] = os.path.join(
                save_folder, f"trials_{name}.txt"
            )
    return outputs


def _existing_outputs(save_folder: str) -> Dict[str, str]:
    """Outputs already present in save_folder (used with skip_prep)."""
    outputs = {}
    for key, filename in (("train", "train.csv"), ("test", "test.csv")):
        path = os.path.join(save_folder, filename)
        if os.path.isfile(path):
            outputs[key] = path
    if os.path.isdir(save_folder):
        for filename in sorted(os.listdir(save_folder)):
            match = re.fullmatch(r"trials_([A-Za-z0-9_-]+)\.txt", filename)
            if match:
                key = f"trials_{match.group(1)}"
                outputs[key] = os.path.join(save_folder, filename)
    return outputs


def _is_prepared(opt_path: str, conf: dict, outputs: Dict[str, str]) -> bool:
    """True if the saved options equal conf and every output exists."""
    if not os.path.isfile(opt_path):
        return False
    if not all(os.path.isfile(path) for path in outputs.values()):
        return False
    try:
        saved = load_pkl(opt_path)
    except Exception:
        return False
    return saved == conf


def _scan_root(root: str) -> Dict[str, str]:
    """Maps ``<spk>/<video>/<utt>`` to the audio path, for one root."""
    wav_dir = os.path.join(root, "wav")
    if not os.path.isdir(wav_dir):
        m4a = _find_one_m4a(root)
        if m4a is not None:
            raise ValueError(_m4a_message(root, m4a, 1))
        raise FileNotFoundError(
            f"No wav/ folder in {root}: expected "
            f"{wav_dir}/<speaker>/<video>/<utt>.wav"
        )
    audio: Dict[str, str] = {}
    m4a: Dict[str, str] = {}
    for speaker in _subdirs(wav_dir):
        spk_dir = os.path.join(wav_dir, speaker)
        for video in _subdirs(spk_dir):
            video_dir = os.path.join(spk_dir, video)
            with os.scandir(video_dir) as entries:
                for entry in entries:
                    stem, ext = os.path.splitext(entry.name)
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    utt_id = f"{speaker}/{video}/{stem}"
                    if ext in AUDIO_EXTENSIONS:
                        if utt_id in audio:
                            raise ValueError(
                                f"Two audio files for {utt_id}: "
                                f"{audio[utt_id]} and {entry.path}"
                            )
                        audio[utt_id] = entry.path
                    elif ext == M4A_EXTENSION:
                        m4a[utt_id] = entry.path
    unconverted = sorted(set(m4a) - set(audio))
    if unconverted:
        first = m4a[unconverted[0]]
        raise ValueError(_m4a_message(root, first, len(unconverted)))
    if not audio:
        raise FileNotFoundError(
            f"No audio ({', '.join(AUDIO_EXTENSIONS)}) found under "
            f"{wav_dir}/<speaker>/<video>/"
        )
    return audio


def _subdirs(folder: str) -> List[str]:
    """Sorted names of the non-hidden sub-folders of folder."""
    with os.scandir(folder) as entries:
        return sorted(
            entry.name
            for entry in entries
            if entry.is_dir() and not entry.name.startswith(".")
        )


def _find_one_m4a(root: str) -> Optional[str]:
    """The first .m4a file found under root, or None."""
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(M4A_EXTENSION):
                return os.path.join(folder, name)
    return None


def _m4a_message(root: str, example: str, count: int) -> str:
    """Error text for .m4a audio that soundfile cannot read."""
    return (
        f"{count} .m4a file(s) under {root} have no .wav/.flac version "
        f"(e.g. {example}). VoxCeleb2 ships AAC audio that soundfile cannot "
        "read: convert it first with "
        f"`python convert_to_wav.py --src {os.path.dirname(example)}"
        " --workers 8` (see recipes/VoxCeleb/SSPS/convert_to_wav.py), and "
        "lay the result out as <root>/wav/<speaker>/<video>/<utt>.wav."
    )


def _read_trial_file(path: str) -> List[Tuple[int, str, str, int]]:
    """Parses ``<label> <enrol> <test>`` lines (with line numbers)."""
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


def _locate_test_utterances(
    trials: Dict[str, List[Tuple[int, str, str, int]]],
    trial_paths: Dict[str, str],
    test_index: Dict[str, str],
    test_root: str,
) -> Dict[str, str]:
    """Maps every utterance of the trial lists to its audio file."""
    paths = {}
    for name, lines in trials.items():
        for _, enrol, test, line_no in lines:
            for utt_id in (enrol, test):
                if utt_id in paths:
                    continue
                if utt_id not in test_index:
                    raise FileNotFoundError(
                        f"{trial_paths[name]}, line {line_no}: {utt_id} not "
                        f"found on disk (looked for "
                        f"{os.path.join(test_root, 'wav', utt_id)}"
                        f"{{{','.join(AUDIO_EXTENSIONS)}}})"
                    )
                paths[utt_id] = test_index[utt_id]
    return paths


def _make_rows(
    ids: List[str],
    paths: Dict[str, str],
    sample_rate: Optional[int],
    num_workers: int,
    drop_empty: bool,
) -> List[List[str]]:
    """CSV rows for ids, with durations read from the file headers."""
    files = [paths[utt_id] for utt_id in ids]
    blocks = [files[i : i + 1024] for i in range(0, len(files), 1024)]
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        infos = [info for block in pool.map(_headers, blocks) for info in block]
    rows, empty = [], []
    for utt_id, path, (frames, rate) in zip(ids, files, infos):
        if sample_rate is not None and rate != sample_rate:
            raise ValueError(
                f"{path} is sampled at {rate} Hz, expected {sample_rate} Hz "
                "(pass sample_rate=None to accept any rate)"
            )
        if frames == 0:
            empty.append(path)
            continue
        speaker, video, _ = utt_id.split("/")
        rows.append([utt_id, f"{frames / rate:.5f}", path, speaker, video])
    if empty and not drop_empty:
        raise ValueError(f"Empty test audio file: {empty[0]}")
    if empty:
        logger.warning(
            "Dropped %d empty audio file(s) from training (e.g. %s).",
            len(empty),
            empty[0],
        )
    return rows


def _headers(paths: List[str]) -> List[Tuple[int, int]]:
    """(frames, sample rate) of each audio file, read from its header."""
    infos = []
    for path in paths:
        try:
            info = sf.info(path)
        except Exception as err:
            raise ValueError(
                f"Cannot read audio header of {path}: {err}"
            ) from err
        infos.append((info.frames, info.samplerate))
    return infos


def _write_csv(path: str, rows: List[List[str]]) -> None:
    """Writes a manifest atomically (temporary file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
    os.replace(tmp, path)


def _write_trials(path: str, lines: List[Tuple[int, str, str, int]]) -> None:
    """Writes a normalised trial list atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for label, enrol, test, _ in lines:
            f.write(f"{label} {enrol} {test}\n")
    os.replace(tmp, path)


def _parse_trial_args(items: Optional[List[str]]) -> Optional[dict]:
    """Turns ``--trial NAME[=PATH]`` options into a trial_lists dict."""
    if not items:
        return None
    lists = {}
    for item in items:
        name, _, path = item.partition("=")
        lists[name] = path or None
    return lists


def main(argv: Optional[List[str]] = None) -> Dict[str, str]:
    """Command-line entry point; prints the written paths as JSON.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        The paths returned by ``prepare_voxceleb``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data_folder",
        required=True,
        help="dataset root(s), comma-separated",
    )
    parser.add_argument("--save_folder", required=True)
    parser.add_argument(
        "--test_folder", default=None, help="root of the trial utterances"
    )
    parser.add_argument(
        "--trial",
        action="append",
        metavar="NAME[=PATH]",
        help="trial list to use (repeatable); O, E and H default to the "
        "standard file in <test_folder>/meta/; default: all present",
    )
    parser.add_argument(
        "--sample_rate",
        type=int,
        default=16000,
        help="expected rate; 0 accepts any",
    )
    parser.add_argument("--num_workers", type=int, default=8)
    args = parser.parse_args(argv)
    outputs = prepare_voxceleb(
        data_folder=args.data_folder,
        save_folder=args.save_folder,
        trial_lists=_parse_trial_args(args.trial),
        test_folder=args.test_folder,
        sample_rate=args.sample_rate or None,
        num_workers=args.num_workers,
    )
    print(json.dumps(outputs, indent=2))
    return outputs


if __name__ == "__main__":
    main()
