"""Writes the noise (MUSAN) and reverberation (RIR) CSVs for augmentation.

The CSVs use SpeechBrain's extended format (``ID,duration,wav,wav_format,
wav_opts``) read by ``speechbrain.augment.time_domain.AddNoise(csv_file=...)``
and ``AddReverb(csv_file=...)``. Unlike
``speechbrain.augment.preparation.prepare_csv``, nothing here downloads,
reads whole files, or modifies the source folders (SpeechBrain's helper
rewrites multi-channel files in place and deletes long files it splits).

* ``prepare_musan`` writes one CSV per MUSAN category, from
  ``<musan>/{noise,speech,music}/<subset>/*.wav``. The paper mixes them at
  SNRs of 0-15 dB (noise), 13-20 dB (speech) and 5-15 dB (music), one
  ``AddNoise`` per category.
* ``prepare_rir`` writes one CSV with every audio file found under the RIR
  folder (e.g. ``RIRS_NOISES/simulated_rirs``).

Files must be mono and at ``sample_rate`` (16 kHz for MUSAN and the
simulated RIRs): ``AddNoise`` and ``AddReverb`` resample with a single rate
per CSV, so a file at another rate is an error; multi-channel files (which
they cannot read as one signal) are left out with a warning.

Authors
-------
* SSPS recipe contributors 2025
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile as sf
from speechbrain.dataio.dataio import load_pkl, save_pkl
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.manifest_rows import write_csv

logger = get_logger(__name__)

MUSAN_CATEGORIES = ("noise", "speech", "music")
AUDIO_EXTENSIONS = (".wav", ".flac")
CSV_HEADER = ["ID", "duration", "wav", "wav_format", "wav_opts"]


def prepare_musan(
    musan_folder: Optional[str],
    save_folder: str,
    categories: Sequence[str] = MUSAN_CATEGORIES,
    sample_rate: int = 16000,
) -> Optional[Dict[str, str]]:
    """Writes ``musan_<category>.csv`` for each MUSAN category.

    Arguments
    ---------
    musan_folder : str or None
        The MUSAN root (holding ``noise/``, ``speech/``, ``music/``). If None
        or absent, nothing is written and None is returned.
    save_folder : str
        Where the CSVs are written (created if missing; must not be inside
        musan_folder).
    categories : sequence of str
        The categories to prepare (each must be a sub-folder with audio).
    sample_rate : int
        Rate every file must have.

    Returns
    -------
    dict or None
        ``{category: csv_path}``, or None if musan_folder is None or absent.

    Example
    -------
    >>> import numpy as np
    >>> musan = getfixture("tmp_path") / "musan"
    >>> (musan / "noise" / "free-sound").mkdir(parents=True)
    >>> path = str(musan / "noise" / "free-sound" / "noise-0.wav")
    >>> sf.write(path, np.zeros(800, dtype="float32"), 16000)
    >>> csvs = prepare_musan(str(musan), str(musan.parent / "aug"), ["noise"])
    >>> open(csvs["noise"]).read().splitlines()[1].split(",")[:2]
    ['noise/free-sound/noise-0', '0.05000']
    """
    if not _folder_given(musan_folder, "MUSAN"):
        return None
    musan_folder = os.path.abspath(musan_folder)
    save_folder = _check_save_folder(save_folder, musan_folder)
    categories = list(categories)
    for category in categories:
        if not os.path.isdir(os.path.join(musan_folder, category)):
            raise FileNotFoundError(
                f"MUSAN category folder not found: "
                f"{os.path.join(musan_folder, category)}"
            )
    outputs = {
        category: os.path.join(save_folder, f"musan_{category}.csv")
        for category in categories
    }
    conf = {
        "musan_folder": musan_folder,
        "categories": categories,
        "sample_rate": sample_rate,
    }
    opt_path = os.path.join(save_folder, "opt_prepare_musan.pkl")
    if _is_prepared(opt_path, conf, list(outputs.values())):
        logger.info("MUSAN CSVs in %s are up to date; skipping.", save_folder)
        return outputs

    for category in categories:
        rows = _make_rows(
            os.path.join(musan_folder, category), musan_folder, sample_rate
        )
        write_csv(outputs[category], rows, CSV_HEADER)
        logger.info(
            "MUSAN %s: %d files, %.1f h -> %s",
            category,
            len(rows),
            sum(float(row[1]) for row in rows) / 3600,
            outputs[category],
        )
    save_pkl(conf, opt_path)
    return outputs


def prepare_rir(
    rir_folder: Optional[str], save_folder: str, sample_rate: int = 16000
) -> Optional[str]:
    """Writes ``rir.csv`` listing every audio file under rir_folder.

    Arguments
    ---------
    rir_folder : str or None
        Folder searched recursively for .wav/.flac impulse responses (e.g.
        ``RIRS_NOISES/simulated_rirs``). If None or absent, nothing is
        written and None is returned.
    save_folder : str
        Where the CSV is written (must not be inside rir_folder).
    sample_rate : int
        Rate every file must have.

    Returns
    -------
    str or None
        The CSV path, or None if rir_folder is None or absent.

    Example
    -------
    >>> prepare_rir(None, str(getfixture("tmp_path"))) is None
    True
    """
    if not _folder_given(rir_folder, "RIR"):
        return None
    rir_folder = os.path.abspath(rir_folder)
    save_folder = _check_save_folder(save_folder, rir_folder)
    output = os.path.join(save_folder, "rir.csv")
    conf = {"rir_folder": rir_folder, "sample_rate": sample_rate}
    opt_path = os.path.join(save_folder, "opt_prepare_rir.pkl")
    if _is_prepared(opt_path, conf, [output]):
        logger.info("RIR CSV %s is up to date; skipping.", output)
        return output
    rows = _make_rows(rir_folder, rir_folder, sample_rate)
    write_csv(output, rows, CSV_HEADER)
    save_pkl(conf, opt_path)
    logger.info("RIR: %d files -> %s", len(rows), output)
    return output


def _folder_given(folder: Optional[str], what: str) -> bool:
    """False (with one warning) if folder is None or does not exist."""
    if folder is None or str(folder).strip() == "":
        logger.warning(
            "No %s folder given: %s augmentation is off.", what, what
        )
        return False
    if not os.path.isdir(folder):
        logger.warning(
            "%s folder %s not found: %s augmentation is off.",
            what,
            folder,
            what,
        )
        return False
    return True


def _check_save_folder(save_folder: str, source: str) -> str:
    """Creates save_folder, refusing a place inside the source folder."""
    save_folder = os.path.abspath(save_folder)
    if os.path.commonpath([save_folder, source]) == source:
        raise ValueError(
            f"save_folder {save_folder} is inside {source}; the source "
            "folder is never written to"
        )
    os.makedirs(save_folder, exist_ok=True)
    return save_folder


def _is_prepared(opt_path: str, conf: dict, outputs: List[str]) -> bool:
    """True if the saved options equal conf and every output exists."""
    if not os.path.isfile(opt_path):
        return False
    if not all(os.path.isfile(path) for path in outputs):
        return False
    try:
        return load_pkl(opt_path) == conf
    except Exception:
        return False


def _list_audio(folder: str) -> List[str]:
    """Sorted audio files under folder (recursive, hidden files skipped)."""
    found = []
    for parent, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            ext = os.path.splitext(name)[1].lower()
            if ext in AUDIO_EXTENSIONS and not name.startswith("."):
                found.append(os.path.join(parent, name))
    return found


def _make_rows(folder: str, id_root: str, sample_rate: int) -> List[List]:
    """CSV rows for the audio under folder; IDs are paths from id_root."""
    files = _list_audio(folder)
    if not files:
        raise FileNotFoundError(
            f"No audio ({', '.join(AUDIO_EXTENSIONS)}) found under {folder}"
        )
    rows, skipped = [], []
    for path in files:
        if "$" in path:
            raise ValueError(
                f"{path}: '$' in a path is read as a variable by "
                "SpeechBrain's CSV loader; rename the file"
            )
        frames, rate, channels = _header(path)
        if rate != sample_rate:
            raise ValueError(
                f"{path} is sampled at {rate} Hz, expected {sample_rate} Hz. "
                "AddNoise/AddReverb resample with one rate per CSV "
                "(noise_sample_rate / reverb_sample_rate): convert the files "
                "to a copy at one rate, or set sample_rate to theirs."
            )
        if channels != 1 or frames == 0:
            skipped.append(path)
            continue
        utt_id = os.path.splitext(os.path.relpath(path, id_root))[0]
        fmt = os.path.splitext(path)[1][1:].lower()
        rows.append([utt_id, f"{frames / rate:.5f}", path, fmt, ""])
    if skipped:
        logger.warning(
            "Left out %d multi-channel or empty file(s) under %s (e.g. %s).",
            len(skipped),
            folder,
            skipped[0],
        )
    if not rows:
        raise ValueError(f"No usable mono audio under {folder}")
    return rows


def _header(path: str) -> Tuple[int, int, int]:
    """(frames, rate, channels) from the file header."""
    try:
        info = sf.info(path)
    except Exception as err:
        raise ValueError(f"Cannot read audio header of {path}: {err}") from err
    return info.frames, info.samplerate, info.channels


def prepare_augmentations(hparams):
    """One ``AddNoise`` per MUSAN category and ``AddReverb``, if prepared.

    The CSV lists are written once (main process), then every process
    builds its augmentations from them (``add_noise`` / ``add_reverb`` /
    ``musan_snr`` of the yaml; used by ``train.py`` and ``train_pl.py``).
    """
    aug_folder = os.path.join(hparams["save_folder"], "augment")
    args = [hparams["musan_folder"], hparams["rir_folder"], aug_folder]

    def write_lists(musan_folder, rir_folder, folder):
        return prepare_musan(musan_folder, folder), prepare_rir(
            rir_folder, folder
        )

    run_on_main(write_lists, args=args)
    musan, rir = write_lists(*args)  # lists already written: just read
    augmentations = []
    for category, csv_file in (musan or {}).items():
        low, high = hparams["musan_snr"][category]
        augmentations.append(
            hparams["add_noise"](csv_file=csv_file, snr_low=low, snr_high=high)
        )
    if rir:
        augmentations.append(hparams["add_reverb"](csv_file=rir))
    return augmentations
