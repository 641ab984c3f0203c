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
* with ``dev_speakers=N`` (``--dev_speakers``): ``dev.csv``, every utterance
  of N training speakers held out of ``train.csv`` (same columns; never a
  test speaker), and ``dev_trials.txt``, a balanced trial list over them
  (see ``speechbrain_ssps.dev_split``), for ``train.py --valid_trials=dev``
  and ``export.py --select best_dev``.
* ``opt_voxceleb_prepare.pkl``: the options of the run, so that a second call
  with the same options skips the work (any other option, ``dev_speakers``
  included, prepares again; a dev split of an earlier run is removed when
  the new one has none).

``ID`` is ``<speaker>/<video>/<utt>`` without extension, ``wav`` the absolute
path, ``duration`` the file length in seconds read from the file header, and
``video_id`` the video folder name. Speakers that appear in a used trial list
are removed from training. The cleaned VoxCeleb1 lists are found by name in
``<test_root>/meta/``: ``veri_test2.txt`` (O), ``list_test_all2.txt`` (E) and
``list_test_hard2.txt`` (H).

VoxCeleb2 ships ``.m4a`` files, which soundfile cannot read: convert them
first with ``convert_to_wav.py`` (same folder). A corpus at another rate
than 16 kHz is resampled once with ``convert_to_wav.py --resample``.

Usage
-----
python voxceleb_prepare.py --data_folder /data/vox2,/data/vox1 \\
    --save_folder results/prep --trial O --dev_speakers 100

Authors
-------
* SSPS recipe contributors 2025
"""

import argparse
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

from speechbrain.dataio.dataio import load_pkl, save_pkl
from speechbrain.utils.logger import get_logger

from speechbrain_ssps import dev_split
from speechbrain_ssps.corpus_scan import scan_root
from speechbrain_ssps.manifest_rows import make_rows, write_csv
from speechbrain_ssps.trial_lists import (
    STANDARD_TRIAL_LISTS,
    locate_test_utterances,
    read_trial_file,
    resolve_trial_lists,
    write_trial_file,
)

logger = get_logger(__name__)

OPT_FILE = "opt_voxceleb_prepare.pkl"


def prepare_voxceleb(
    data_folder: Union[str, Sequence[str]],
    save_folder: str,
    trial_lists: Optional[Dict[str, Optional[str]]] = None,
    test_folder: Optional[str] = None,
    skip_prep: bool = False,
    sample_rate: Optional[int] = 16000,
    num_workers: int = 8,
    dev_speakers: int = 0,
    dev_trials: int = dev_split.DEFAULT_TRIALS,
    dev_utterances: int = dev_split.DEFAULT_MAX_UTTERANCES,
    dev_seed: int = dev_split.DEFAULT_SEED,
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
    dev_speakers : int
        Training speakers held out into ``dev.csv`` and ``dev_trials.txt``
        (0: none).
    dev_trials : int
        Trials of ``dev_trials.txt`` (half target, half non-target).
    dev_utterances : int
        Utterances of each dev speaker that its trials may use.
    dev_seed : int
        Seed of the dev speakers, utterances and trials.

    Returns
    -------
    dict
        ``{"train": path, "test": path, "trials_<name>": path, ...}``
        (``test`` and the trial entries only when trial lists are used;
        ``dev`` and ``dev_trials`` with a dev split).

    Example
    -------
    >>> import numpy as np, soundfile as sf
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
    dev_split.check_dev_options(dev_speakers, dev_trials, dev_utterances)

    # 1. Resolve and check every input path.
    roots = _split_roots(data_folder)
    test_root, trial_paths = resolve_trial_lists(
        roots, trial_lists, test_folder
    )
    conf = {
        "data_folder": roots,
        "save_folder": save_folder,
        "test_folder": test_root,
        "trial_lists": trial_paths,
        "sample_rate": sample_rate,
    }
    if dev_speakers:  # absent when 0: earlier preparations stay valid
        conf["dev"] = [dev_speakers, dev_trials, dev_utterances, dev_seed]
    outputs = _expected_outputs(save_folder, trial_paths)
    if dev_speakers:
        outputs.update(_dev_outputs(save_folder))
    opt_path = os.path.join(save_folder, OPT_FILE)
    stale_dev = [] if dev_speakers else _present(_dev_outputs(save_folder))
    if not stale_dev and _is_prepared(opt_path, conf, outputs):
        logger.info(
            "VoxCeleb manifests in %s match these options; skipping "
            "preparation.",
            save_folder,
        )
        return outputs

    # 2. Index the audio of every root (file names only, no reads).
    indexes = {root: scan_root(root) for root in roots}
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
    trials = {name: read_trial_file(path) for name, path in trial_paths.items()}
    test_paths: Dict[str, str] = {}
    if trials:
        test_index = indexes.get(test_root)
        if test_index is None:
            test_index = scan_root(test_root)
        test_paths = locate_test_utterances(
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
    train_ids, dev_ids = _hold_out_dev(train_ids, dev_speakers, dev_seed)

    # 5. Durations from the file headers.
    train_rows = make_rows(
        train_ids, all_train, sample_rate, num_workers, drop_empty=True
    )
    dev_rows = make_rows(
        dev_ids, all_train, sample_rate, num_workers, drop_empty=True
    )
    dev_list = []
    if dev_speakers:
        dev_list = dev_split.make_dev_trials(
            [(row[0], row[3], row[4]) for row in dev_rows],
            dev_trials,
            dev_utterances,
            dev_seed,
        )
    test_rows = make_rows(
        sorted(test_paths),
        test_paths,
        sample_rate,
        num_workers,
        drop_empty=False,
    )

    # 6. Write everything, the options file last (removed first, so that
    # a run killed half-way is never taken for a finished one).
    os.makedirs(save_folder, exist_ok=True)
    if os.path.exists(opt_path):
        os.remove(opt_path)
    write_csv(outputs["train"], train_rows)
    if dev_speakers:
        write_csv(outputs["dev"], dev_rows)
        dev_split.write_dev_trials(outputs["dev_trials"], dev_list)
    for path in stale_dev:
        os.remove(path)
        logger.warning("Removed %s (this preparation has no dev split)", path)
    if trials:
        write_csv(outputs["test"], test_rows)
        for name, lines in trials.items():
            write_trial_file(outputs[f"trials_{name}"], lines)
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
        "trial lists %s, dev split %d utterances of %d speakers (%d "
        "trials).",
        save_folder,
        len(train_rows),
        len({row[3] for row in train_rows}),
        n_removed,
        len(test_speakers),
        len(test_rows),
        {name: len(lines) for name, lines in trials.items()},
        len(dev_rows),
        len({row[3] for row in dev_rows}),
        len(dev_list),
    )
    return outputs


def _hold_out_dev(
    train_ids: List[str], dev_speakers: int, seed: int
) -> Tuple[List[str], List[str]]:
    """Splits the (test-free) training IDs into training and dev IDs."""
    if not dev_speakers:
        return train_ids, []
    speakers = {utt_id.split("/")[0] for utt_id in train_ids}
    chosen = set(dev_split.choose_dev_speakers(speakers, dev_speakers, seed))
    dev = [u for u in train_ids if u.split("/")[0] in chosen]
    return [u for u in train_ids if u.split("/")[0] not in chosen], dev


def _dev_outputs(save_folder: str) -> Dict[str, str]:
    """Paths of the dev split's files."""
    return {
        "dev": os.path.join(save_folder, dev_split.DEV_CSV),
        "dev_trials": os.path.join(save_folder, dev_split.DEV_TRIALS),
    }


def _present(paths: Dict[str, str]) -> List[str]:
    """The paths that exist."""
    return [path for path in paths.values() if os.path.exists(path)]


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
    for key, path in _dev_outputs(save_folder).items():
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
    parser.add_argument(
        "--dev_speakers",
        type=int,
        default=0,
        help="training speakers held out into dev.csv / dev_trials.txt",
    )
    parser.add_argument(
        "--dev_trials", type=int, default=dev_split.DEFAULT_TRIALS
    )
    parser.add_argument(
        "--dev_utterances",
        type=int,
        default=dev_split.DEFAULT_MAX_UTTERANCES,
        help="utterances per dev speaker used by the dev trials",
    )
    parser.add_argument("--dev_seed", type=int, default=dev_split.DEFAULT_SEED)
    args = parser.parse_args(argv)
    outputs = prepare_voxceleb(
        data_folder=args.data_folder,
        save_folder=args.save_folder,
        trial_lists=_parse_trial_args(args.trial),
        test_folder=args.test_folder,
        sample_rate=args.sample_rate or None,
        num_workers=args.num_workers,
        dev_speakers=args.dev_speakers,
        dev_trials=args.dev_trials,
        dev_utterances=args.dev_utterances,
        dev_seed=args.dev_seed,
    )
    print(json.dumps(outputs, indent=2))
    return outputs


if __name__ == "__main__":
    main()
