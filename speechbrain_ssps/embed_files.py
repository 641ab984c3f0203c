"""One embedding file per audio file, with an index and resumption.

Used by ``recipes/VoxCeleb/SSPS/embed.py``. The files come from a folder
(every audio file below it; ID = relative path without extension) or from
a CSV with ``ID`` and ``wav`` columns (relative ``wav`` paths are relative
to the CSV's folder). :func:`embed_to_folder` writes, in the output folder,

* ``<ID>.npy``: the ``(D,)`` float32 embedding of the whole file
  (``speechbrain_ssps.embeddings.embed_utterances``: length-sorted padded
  batches, files longer than ``max_chunk_seconds`` averaged over chunks);
* ``embeddings.csv``: ``ID,wav,npy,duration`` (``npy`` relative to the
  output folder, ``duration`` in seconds), in input order;
* ``embed_info.json``: the export folder and the fingerprint of its weights
  (``speechbrain_ssps.thresholds.model_fingerprint``) plus the chunking.

A second run with the same export skips the files whose row, ``.npy`` file
and duration are already there (an interrupted run resumes: the index is
appended to after every group of ``batch_size`` files); an output folder
written by another export (or chunking) is refused unless ``overwrite``.

Authors
-------
* SSPS contributors 2025
"""

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.embeddings import _probe, embed_utterances

logger = get_logger(__name__)

INDEX_FILE = "embeddings.csv"
INFO_FILE = "embed_info.json"
INDEX_HEADER = ["ID", "wav", "npy", "duration"]
DEFAULT_EXTENSIONS = (".wav", ".flac")


class Item(NamedTuple):
    """One file to embed: its ID, audio path and ``.npy`` path."""

    uid: str
    wav: str
    npy: str  # relative to the output folder


def _npy_name(uid: str, where: str) -> str:
    """``<uid>.npy``, refusing IDs that would leave the output folder."""
    parts = uid.replace("\\", "/").split("/")
    if (
        not uid
        or os.path.isabs(uid)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(
            f"{where}: ID {uid!r} cannot name a file below the output folder"
        )
    return "/".join(parts) + ".npy"


def items_from_folder(
    folder: str, extensions: Sequence[str] = DEFAULT_EXTENSIONS
) -> List[Item]:
    """Every audio file below a folder, sorted by relative path.

    Arguments
    ---------
    folder : str
        The folder to scan (recursively).
    extensions : sequence of str
        Audio file endings (case-insensitive), e.g. ``(".wav", ".flac")``.

    Returns
    -------
    list of Item
        ID = the relative path without extension (``/`` separated).
    """
    root = os.path.abspath(folder)
    if not os.path.isdir(root):
        raise ValueError(f"--folder {folder} is not a folder")
    ends = tuple(
        e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions
    )
    items, seen = [], {}
    for here, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if not name.lower().endswith(ends):
                continue
            path = os.path.join(here, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            uid = os.path.splitext(rel)[0]
            if uid in seen:
                raise ValueError(
                    f"--folder: {seen[uid]} and {path} would both be "
                    f"embedded as {uid!r}"
                )
            seen[uid] = path
            items.append(Item(uid, path, _npy_name(uid, path)))
    if not items:
        raise ValueError(
            f"--folder {folder} holds no audio files ({', '.join(ends)})"
        )
    return items


def items_from_csv(path: str) -> List[Item]:
    """The rows of a CSV with ``ID`` and ``wav`` columns, checked.

    Arguments
    ---------
    path : str
        The CSV (e.g. a SpeechBrain manifest); other columns are ignored.

    Returns
    -------
    list of Item
        In row order; ``wav`` made absolute (relative to the CSV's folder).
    """
    if not os.path.isfile(path):
        raise ValueError(f"--csv {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    items, seen = [], set()
    with open(path, newline="", encoding="utf-8") as fin:
        reader = csv.DictReader(fin)
        missing = {"ID", "wav"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"--csv {path} lacks the column(s) {sorted(missing)} "
                f"(has {reader.fieldnames})"
            )
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            uid, wav = (row.get("ID") or "").strip(), row.get("wav") or ""
            if uid in seen:
                raise ValueError(f"{where}: duplicate ID {uid!r}")
            npy = _npy_name(uid, where)
            wav = os.path.join(base, os.path.expanduser(wav.strip()))
            if not os.path.isfile(wav):
                raise ValueError(f"{where}: audio file {wav} does not exist")
            seen.add(uid)
            items.append(Item(uid, os.path.normpath(wav), npy))
    if not items:
        raise ValueError(f"--csv {path} has no rows")
    return items


def _read_index(path: str) -> Dict[str, Dict[str, str]]:
    """Complete rows of an existing index by ID (a torn last row dropped)."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as fin:
        rows = list(csv.DictReader(fin))
    return {
        r["ID"]: r
        for r in rows
        if all(r.get(k) not in (None, "") for k in INDEX_HEADER)
    }


def _check_info(output_folder: str, info: dict, overwrite: bool) -> bool:
    """True when the folder's embeddings are reusable (same export)."""
    path = os.path.join(output_folder, INFO_FILE)
    if not os.path.isfile(path):
        return True
    try:
        with open(path, encoding="utf-8") as fin:
            old = json.load(fin)
    except ValueError:
        old = {}
    keys = ("model_sha256", "max_chunk_seconds", "sample_rate")
    if all(old.get(k) == info.get(k) for k in keys):
        return True
    if overwrite:
        logger.info(f"{output_folder}: --overwrite, embedding everything")
        return False
    raise ValueError(
        f"--output_folder {output_folder} holds embeddings of another export "
        f"or chunking ({old.get('export_folder')}, see {path}); choose "
        "another folder or pass --overwrite"
    )


def _write_rows(path: str, rows: List[List[str]], mode: str) -> None:
    """Rewrites (``w``, with header, atomically) or appends (``a``) rows."""
    target = f"{path}.part" if mode == "w" else path
    with open(target, mode, newline="", encoding="utf-8") as fout:
        writer = csv.writer(fout)
        if mode == "w":
            writer.writerow(INDEX_HEADER)
        writer.writerows(rows)
        fout.flush()
        os.fsync(fout.fileno())
    if mode == "w":
        os.replace(target, path)


def _save_npy(path: str, embedding: np.ndarray) -> None:
    """``np.save`` through a temporary file, so no torn ``.npy`` remains."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.part"
    with open(tmp, "wb") as fout:
        np.save(fout, embedding)
    os.replace(tmp, path)


def embed_to_folder(
    encoder,
    items: List[Item],
    output_folder: str,
    info: dict,
    batch_size: int = 32,
    batch_seconds: float = 120.0,
    max_chunk_seconds: Optional[float] = 60.0,
    num_workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> Dict[str, int]:
    """Embeds the files not yet embedded by this export; writes the index.

    Arguments
    ---------
    encoder : SpeakerRecognition or callable
        As for ``embed_utterances``.
    items : list of Item
        From :func:`items_from_folder` or :func:`items_from_csv`.
    output_folder : str
        Where the ``.npy`` files, ``embeddings.csv`` and
        ``embed_info.json`` go.
    info : dict
        Written to ``embed_info.json``; its ``model_sha256``,
        ``max_chunk_seconds`` and ``sample_rate`` decide whether existing
        embeddings are reused.
    batch_size : int
        Most files per batch (files are sorted by duration, longest first).
    batch_seconds : float
        Most padded audio per batch, in seconds.
    max_chunk_seconds : float, optional
        Longer files are embedded as the average of chunks; None: never.
    num_workers : int
        Audio-reading threads.
    overwrite : bool
        Re-embed everything, even when the folder holds another export's.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``{"embedded": n, "skipped": m, "total": n + m}``.
    """
    from tqdm import tqdm

    if int(batch_size) < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
    output_folder = os.path.abspath(output_folder)
    os.makedirs(output_folder, exist_ok=True)
    reuse = _check_info(output_folder, info, overwrite)
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        probes = list(
            pool.map(_probe, [i.uid for i in items], [i.wav for i in items])
        )
    durations = {
        i.uid: f"{frames / rate:.5f}"
        for i, (frames, rate) in zip(items, probes)
    }
    index_path = os.path.join(output_folder, INDEX_FILE)
    old = _read_index(index_path) if reuse else {}
    done, pending = {}, []
    for item in items:
        row = [item.uid, item.wav, item.npy, durations[item.uid]]
        prev = old.get(item.uid)
        if (
            prev is not None
            and [prev[k] for k in INDEX_HEADER] == row
            and os.path.isfile(os.path.join(output_folder, item.npy))
        ):
            done[item.uid] = row
        else:
            pending.append(item)
    if done:
        logger.info(
            f"Skipping {len(done)} of {len(items)} files already embedded by "
            f"this export (listed in {index_path})"
        )
    with open(
        os.path.join(output_folder, INFO_FILE), "w", encoding="utf-8"
    ) as fout:
        json.dump(info, fout, indent=2)
    _write_rows(index_path, list(done.values()), "w")

    pending.sort(key=lambda i: -float(durations[i.uid]))
    with tqdm(
        total=len(pending), unit="file", disable=not progress, desc="Embedding"
    ) as bar:
        for start in range(0, len(pending), int(batch_size)):
            group = pending[start : start + int(batch_size)]
            embeddings = embed_utterances(
                encoder,
                {i.uid: i.wav for i in group},
                batch_seconds=batch_seconds,
                max_chunk_seconds=max_chunk_seconds,
                num_workers=num_workers,
            )
            rows = []
            for item in group:
                vector = embeddings[item.uid].numpy().astype(np.float32)
                _save_npy(os.path.join(output_folder, item.npy), vector)
                row = [item.uid, item.wav, item.npy, durations[item.uid]]
                done[item.uid] = row
                rows.append(row)
            _write_rows(index_path, rows, "a")
            bar.update(len(group))
    _write_rows(index_path, [done[i.uid] for i in items], "w")
    logger.info(
        f"{len(pending)} files embedded, {len(items) - len(pending)} skipped; "
        f"index: {index_path}"
    )
    return {
        "embedded": len(pending),
        "skipped": len(items) - len(pending),
        "total": len(items),
    }
