"""Trial lists and their cosine scoring from a table of embeddings.

A trial list has one ``<label> <enrol> <test>`` line per trial (label 1 for
a same-speaker pair, 0 otherwise), as VoxCeleb distributes it and as the
recipe's ``voxceleb_prepare.py`` writes ``trials_*.txt``. ``score_trials``
scores a whole list at once: each utterance is stacked and L2-normalised
once, and the trials are scored in vectorised blocks of ``chunk_size``.

Authors
-------
* SSPS contributors 2025
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

_AUDIO_EXTENSIONS = (".wav", ".flac", ".m4a")


def read_trials(path: str, with_line_numbers: bool = False) -> List[tuple]:
    """Reads a trial list of ``<label> <enrol> <test>`` lines.

    Audio extensions (``.wav``, ``.flac``, ``.m4a``) are stripped from the
    IDs, so raw VoxCeleb lists and the prepared ``trials_*.txt`` both work.
    Blank lines are skipped.

    Arguments
    ---------
    path : str
        The trial file.
    with_line_numbers : bool
        Also return each trial's line number (for error messages).

    Returns
    -------
    list of tuple
        ``(label, enrol_id, test_id)`` per trial, followed by the line
        number when ``with_line_numbers``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "trials.txt"
    >>> _ = path.write_text("1 id1/v1/00001.wav id1/v2/00001.wav\\n")
    >>> read_trials(str(path))
    [(1, 'id1/v1/00001', 'id1/v2/00001')]
    """
    trials = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise ValueError(
                    f"{path}, line {line_no}: expected '<0|1> <enrol> "
                    f"<test>', got {line.strip()!r}"
                )
            trial = (
                int(fields[0]),
                _strip_ext(fields[1]),
                _strip_ext(fields[2]),
            )
            trials.append(trial + (line_no,) if with_line_numbers else trial)
    return trials


def _strip_ext(name: str) -> str:
    """Removes a known audio extension."""
    for ext in _AUDIO_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _stack(
    embeddings: Dict[str, torch.Tensor], ids: Sequence[str], where: str
) -> torch.Tensor:
    """Stacks and L2-normalises the embeddings of ids, shape (len(ids), D)."""
    if not ids:
        raise ValueError(f"No embedding to stack ({where})")
    missing = next((u for u in ids if u not in embeddings), None)
    if missing is not None:
        raise KeyError(f"No embedding for {missing!r} ({where})")
    rows = [torch.as_tensor(embeddings[u]).detach().cpu() for u in ids]
    sizes = {row.numel() for row in rows}
    if len(sizes) > 1:
        dim = rows[0].numel()
        odd, size = next(
            (u, row.numel()) for u, row in zip(ids, rows) if row.numel() != dim
        )
        raise ValueError(
            f"Embedding of {odd!r} has {size} values, "
            f"{ids[0]!r} has {dim} (shapes (D,), (1, D) or (1, 1, D) "
            "accepted)"
        )
    try:  # fast path: one C call when all shapes agree
        matrix = torch.stack(rows).reshape(len(rows), -1)
    except RuntimeError:
        matrix = torch.stack([row.reshape(-1).float() for row in rows])
    return F.normalize(matrix.float(), dim=1)


def _index(ids: Sequence[str]) -> Tuple[List[str], np.ndarray]:
    """Unique ids (first-seen order) and the position of each id in them."""
    position: Dict[str, int] = {}
    inverse = np.fromiter(
        (position.setdefault(i, len(position)) for i in ids),
        dtype=np.int64,
        count=len(ids),
    )
    return list(position), inverse


def score_trials(
    embeddings: Dict[str, torch.Tensor],
    trials: Sequence[Tuple[int, str, str]],
    chunk_size: int = 65536,
) -> Tuple[np.ndarray, np.ndarray]:
    """Cosine scores of a trial list.

    Arguments
    ---------
    embeddings : dict
        Utterance ID to embedding, each of shape ``(D,)``, ``(1, D)`` or
        ``(1, 1, D)``.
    trials : sequence of (int, str, str)
        ``(label, enrol_id, test_id)`` per trial (see ``read_trials``).
    chunk_size : int
        Trials scored per vectorised block (bounds memory).

    Returns
    -------
    scores : numpy.ndarray
        Cosine score per trial (float64).
    labels : numpy.ndarray
        Label per trial (int64).

    Example
    -------
    >>> emb = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 3.0])}
    >>> score_trials(emb, [(1, "a", "a"), (0, "a", "b")])
    (array([1., 0.]), array([1, 0]))
    """
    if len(trials) == 0:
        raise ValueError("No trial to score")
    labels = np.fromiter((t[0] for t in trials), np.int64, count=len(trials))
    ids, inverse = _index([u for t in trials for u in (t[1], t[2])])
    missing = next((u for u in ids if u not in embeddings), None)
    if missing is not None:
        line = next(
            n for n, t in enumerate(trials, 1) if missing in (t[1], t[2])
        )
        raise KeyError(f"No embedding for {missing!r} (trial {line})")
    matrix = _stack(embeddings, ids, "score_trials")
    enrol = torch.from_numpy(np.ascontiguousarray(inverse[0::2]))
    test = torch.from_numpy(np.ascontiguousarray(inverse[1::2]))
    scores = torch.empty(len(trials), dtype=torch.float32)
    for start in range(0, len(trials), chunk_size):
        stop = start + chunk_size
        scores[start:stop] = torch.linalg.vecdot(
            matrix.index_select(0, enrol[start:stop]),
            matrix.index_select(0, test[start:stop]),
        )
    return scores.double().numpy(), labels
