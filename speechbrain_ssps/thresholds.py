"""Calibrated decision thresholds stored with an exported encoder.

SpeechBrain's ``SpeakerRecognition.verify_batch`` / ``verify_files`` accept
a trial when the cosine score exceeds a fixed 0.25, which means nothing for
the scores of an SSPS encoder. ``verify.py`` reports, per trial list, the
thresholds of the EER and of the minDCF operating points (``results.json``,
"accept if score >= threshold"); this module picks one of them (or a
value given by hand) and stores it in the export folder:

* ``threshold.json``: the value, its provenance (``kind``: ``eer``,
  ``mindcf`` or ``manual``; the trial list; the verification results file
  and the metrics measured there) and the fingerprint of the encoder's
  weights (:func:`model_fingerprint`), so that a threshold can never be
  applied to another model by mistake;
* a ``threshold: <value>`` entry appended to the export's
  ``hyperparams.yaml`` (``model.hparams.threshold`` for plain SpeechBrain
  users).

Thresholds of score-normalised results (``score_norm`` other than null)
are refused: ``verify_files`` scores raw cosines. :func:`load_threshold`
reads and checks a stored threshold; ``speechbrain_ssps.inference`` decides
with it.

Authors
-------
* SSPS contributors 2025
"""

import hashlib
import json
import math
import os
from typing import Any, Dict, Optional

import torch
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.export import read_training_hparams

logger = get_logger(__name__)

THRESHOLD_FILE = "threshold.json"
RESULTS_FILE = "results.json"
ENCODER_FILE = "embedding_model.ckpt"
NORMALIZER_FILE = "normalizer.ckpt"
#: ``--threshold_kind`` value -> key of verify.py's ``results.json``.
KINDS = {"eer": "eer_threshold", "mindcf": "min_dcf_threshold"}
DECISION = "accept if cosine score >= threshold"
YAML_MARKER = "# ---- decision threshold (speechbrain_ssps.thresholds)"


def check_export_folder(export_folder: str, option: str = "export_folder"):
    """Raises a ValueError unless the folder holds an exported encoder.

    Arguments
    ---------
    export_folder : str
        A folder written by ``export.py``.
    option : str
        The option name used in the error message.

    Returns
    -------
    str
        The folder as an absolute path.
    """
    folder = os.path.abspath(export_folder)
    if not os.path.isdir(folder):
        raise ValueError(f"--{option} {folder} does not exist")
    for name in ("hyperparams.yaml", ENCODER_FILE):
        if not os.path.isfile(os.path.join(folder, name)):
            raise ValueError(
                f"--{option} {folder} has no {name}: not an exported "
                "encoder (run export.py first)"
            )
    return folder


def model_fingerprint(export_folder: str) -> str:
    """SHA-256 of an export's weights (names, dtypes, shapes, values).

    Hashes the tensors of ``embedding_model.ckpt`` (and
    ``normalizer.ckpt`` when present), not the files' bytes, so it does
    not depend on how they were serialised.

    Arguments
    ---------
    export_folder : str
        An exported encoder folder.

    Returns
    -------
    str
        The hex digest.
    """
    folder = check_export_folder(export_folder)
    digest = hashlib.sha256()
    for name in (ENCODER_FILE, NORMALIZER_FILE):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        state = torch.load(path, map_location="cpu", weights_only=True)
        digest.update(name.encode())
        _hash_state(digest, state)
    return digest.hexdigest()


def _hash_state(digest, value: Any) -> None:
    """Feeds a (nested) state dict into a hashlib object."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(f"<{key}>".encode())
            _hash_state(digest, value[key])
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        digest.update(repr(value).encode())


def _results_path(threshold_from: str) -> str:
    """``results.json`` of a verify.py output folder, or the file itself."""
    path = os.path.abspath(threshold_from)
    if os.path.isdir(path):
        path = os.path.join(path, RESULTS_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"--threshold_from {threshold_from}: {path} does not exist "
            "(give verify.py's output folder or its results.json)"
        )
    return path


def verified_export(results_path: str) -> str:
    """The export folder that verify.py evaluated, from its saved yaml.

    Arguments
    ---------
    results_path : str
        verify.py's ``results.json``; its ``hyperparams.yaml`` (written by
        ``sb.create_experiment_directory``) must be next to it.

    Returns
    -------
    str
        The ``export_folder`` of that run (absolute).
    """
    yaml_path = os.path.join(os.path.dirname(results_path), "hyperparams.yaml")
    if not os.path.isfile(yaml_path):
        raise ValueError(
            f"--threshold_from: {yaml_path} not found, so the model that "
            f"{results_path} was measured with is unknown (pass the whole "
            "verify.py output folder, or --threshold=<value>)"
        )
    hparams = read_training_hparams(yaml_path)  # nothing instantiated
    folder = hparams.get("export_folder")
    if not folder:
        raise ValueError(f"{yaml_path} names no export_folder")
    return os.path.abspath(folder)


def threshold_from_results(
    threshold_from: str,
    trial_list: Optional[str] = None,
    kind: str = "eer",
) -> Dict[str, Any]:
    """Reads a threshold (and its provenance) from verify.py's results.

    Also fingerprints the export folder that verify.py evaluated, so call
    this before that folder is overwritten by a new export.

    Arguments
    ---------
    threshold_from : str
        verify.py's output folder, or its ``results.json``.
    trial_list : str, optional
        Trial list name (a key of ``results.json``, e.g. ``O``); default:
        the only list there.
    kind : str
        ``eer`` or ``mindcf``.

    Returns
    -------
    dict
        The content of ``threshold.json`` (``model_sha256`` being that of
        the evaluated export).
    """
    if kind not in KINDS:
        raise ValueError(
            f"--threshold_kind must be one of {sorted(KINDS)}, got {kind!r}"
        )
    path = _results_path(threshold_from)
    try:
        with open(path, encoding="utf-8") as fin:
            results = json.load(fin)
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(results, dict) or not results:
        raise ValueError(f"{path} holds no trial list results")
    if trial_list is None:
        if len(results) != 1:
            raise ValueError(
                f"{path} has the trial lists {sorted(results)}: choose one "
                "with --threshold_list"
            )
        trial_list = next(iter(results))
    trial_list = str(trial_list)
    if trial_list not in results:
        raise ValueError(
            f"--threshold_list {trial_list!r} is not in {path} (lists: "
            f"{', '.join(sorted(results))})"
        )
    stats = results[trial_list]
    if not isinstance(stats, dict) or KINDS[kind] not in stats:
        raise ValueError(
            f"{path}: list {trial_list!r} has no {KINDS[kind]} (re-run "
            "verify.py)"
        )
    if stats.get("score_norm") is not None:
        raise ValueError(
            f"{path}: list {trial_list!r} was scored with score_norm="
            f"{stats['score_norm']}, whose thresholds do not apply to the "
            "raw cosine scores of verify_files; re-run verify.py with "
            "score_norm: null"
        )
    value = float(stats[KINDS[kind]])
    if not math.isfinite(value):
        raise ValueError(
            f"{path}: the {kind} threshold of list {trial_list!r} is {value} "
            "(the operating point rejects or accepts every trial); use "
            "another --threshold_kind or list"
        )
    model = verified_export(path)
    try:
        fingerprint = model_fingerprint(model)
    except ValueError as error:
        raise ValueError(
            f"--threshold_from {path} was measured on {model}, which can no "
            f"longer be read ({error}); re-run verify.py"
        ) from error
    metrics = ("eer_percent", "min_dcf", "num_trials", "num_targets")
    return {
        "threshold": value,
        "kind": kind,
        "trial_list": trial_list,
        "source": path,
        "decision": DECISION,
        "model_sha256": fingerprint,
        "verified_export": model,
        "p_target": stats.get("p_target"),
        **{k: stats[k] for k in metrics if k in stats},
    }


def manual_threshold(value: float) -> Dict[str, Any]:
    """The content of ``threshold.json`` for a value given by hand."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"--threshold must be a finite number, got {value}")
    return {
        "threshold": value,
        "kind": "manual",
        "trial_list": None,
        "source": None,
        "decision": DECISION,
        "model_sha256": None,
    }


def save_threshold(export_folder: str, info: Dict[str, Any]) -> str:
    """Stores a threshold in an export folder (json + hyperparams entry).

    Arguments
    ---------
    export_folder : str
        The export folder (already holding the encoder).
    info : dict
        From :func:`threshold_from_results` or :func:`manual_threshold`.
        Its ``model_sha256``, when set, must be the folder's fingerprint.

    Returns
    -------
    str
        The path of ``threshold.json``.
    """
    folder = check_export_folder(export_folder)
    fingerprint = model_fingerprint(folder)
    expected = info.get("model_sha256")
    if expected is not None and expected != fingerprint:
        raise ValueError(
            f"--threshold_from {info.get('source')} was measured on the "
            f"export {info.get('verified_export')}, whose weights differ "
            f"from those exported to {folder} (other checkpoints or "
            "--average?); re-run verify.py on this export first"
        )
    info = {**info, "model_sha256": fingerprint}
    path = os.path.join(folder, THRESHOLD_FILE)
    with open(path, "w", encoding="utf-8") as fout:
        json.dump(info, fout, indent=2)
    _write_yaml_entry(folder, info)
    where = f"{info['kind']} of list {info['trial_list']}"
    if info["kind"] == "manual":
        where = "given by hand"
    logger.info(f"Stored threshold {info['threshold']:.6f} ({where}) in {path}")
    return path


def clear_threshold(export_folder: str) -> None:
    """Removes a stored threshold (a new export without one)."""
    folder = os.path.abspath(export_folder)
    path = os.path.join(folder, THRESHOLD_FILE)
    if os.path.exists(path):
        os.remove(path)
        logger.info(f"Removed the stale {path} (no threshold given)")
    _write_yaml_entry(folder, None)


def _write_yaml_entry(folder: str, info: Optional[Dict[str, Any]]) -> None:
    """Replaces the threshold entry at the end of ``hyperparams.yaml``."""
    path = os.path.join(folder, "hyperparams.yaml")
    with open(path, encoding="utf-8") as fin:
        text = fin.read()
    text = text.split("\n" + YAML_MARKER, 1)[0].rstrip("\n") + "\n"
    if info is not None:
        source = info["kind"]
        if info["kind"] != "manual":
            source += f" of trial list {info['trial_list']}"
        text += (
            f"\n{YAML_MARKER}\n# {DECISION}; {source}, see {THRESHOLD_FILE}\n"
            f"threshold: {info['threshold']!r}\n"
        )
    with open(path, "w", encoding="utf-8") as fout:
        fout.write(text)


def load_threshold(export_folder: str) -> Dict[str, Any]:
    """Reads and checks the threshold stored in an export folder.

    Arguments
    ---------
    export_folder : str
        An export folder with ``threshold.json``.

    Returns
    -------
    dict
        The content of ``threshold.json``.
    """
    folder = check_export_folder(export_folder)
    path = os.path.join(folder, THRESHOLD_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"{folder} has no {THRESHOLD_FILE}: export with "
            "--threshold_from=<verify output> or --threshold=<value>"
        )
    try:
        with open(path, encoding="utf-8") as fin:
            info = json.load(fin)
        value = float(info["threshold"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a threshold file: {error}") from error
    if not math.isfinite(value):
        raise ValueError(f"{path}: threshold {value} is not finite")
    if info.get("model_sha256") != model_fingerprint(folder):
        raise ValueError(
            f"{path} does not match the model in {folder} (its model_sha256 "
            "differs from the weights' fingerprint); re-export with the "
            "threshold options"
        )
    return {**info, "threshold": value}
