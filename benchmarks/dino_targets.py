"""Can a DINO student predict the targets that SSPS would swap in?

DINO's loss is the cross-entropy ``H(p, q)`` between the teacher's centred,
sharpened distribution ``p`` over prototypes for one view and the student's
distribution ``q`` for another view. SSPS and the label oracle replace the
teacher's ``p`` of an anchor by that of another utterance. Whether that
teaches the student anything depends on how those targets relate to the
anchor's own. This diagnostic answers it for any checkpoint of a DINO run,
without training:

1. cuts two crops of the run's global-view length from every utterance of
   a labelled manifest (clean, no augmentation; seeded);
2. runs the student (``embedding_model`` + ``head``) on the first crop and
   the teacher (``teacher_model`` + ``teacher_head``, with the checkpoint's
   loss centre and temperatures) on the second, both in eval mode;
3. reports, for each kind of partner ``j`` of anchor ``i``, the mean of
   ``H(p_j, q_i)``, of the teacher entropy ``H(p_j)`` and of their
   difference ``KL(p_j || q_i)`` (what the student could still learn), and
   how often the student's top prototype for ``i`` is the teacher's top
   prototype for ``j``:

   * ``same_utterance``: ``j = i`` (DINO's own target);
   * ``same_video``: another utterance of ``i``'s video;
   * ``same_speaker_other_video``: an utterance of ``i``'s speaker from
     another video (the oracle's target);
   * ``other_speaker``: an utterance of another speaker (a wrong
     pseudo-positive).

It also gives the effective number of prototypes the teacher uses,
``exp(H(mean p))``. Labels are read for the diagnostic only.

Run::

    python benchmarks/dino_targets.py --run results/dino/baseline/1986 \\
        --epoch 19 --out targets_epoch19.json

Authors
 * speechbrain-ssps contributors
"""

import argparse
import csv
import json
import os
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

PARTNERS = (
    "same_utterance",
    "same_video",
    "same_speaker_other_video",
    "other_speaker",
)


def draw_partners(
    speakers: Sequence[str],
    videos: Sequence[str],
    seed: int = 0,
    chunk: int = 1024,
) -> Dict[str, torch.Tensor]:
    """One random partner per utterance and kind (-1 where none exists).

    Example
    -------
    >>> p = draw_partners(["a", "a", "a", "b"], ["v", "v", "w", "x"])
    >>> p["same_utterance"].tolist(), p["same_video"].tolist()
    ([0, 1, 2, 3], [1, 0, -1, -1])
    >>> p["same_speaker_other_video"].tolist() in ([2, 2, 0, -1], [2, 2, 1, -1])
    True
    >>> p["other_speaker"].tolist()[:3], p["other_speaker"][3].item() < 3
    ([3, 3, 3], True)
    """
    spk_ids = {s: k for k, s in enumerate(dict.fromkeys(speakers))}
    vid_ids = {v: k for k, v in enumerate(dict.fromkeys(videos))}
    spk = torch.tensor([spk_ids[s] for s in speakers])
    vid = torch.tensor([vid_ids[v] for v in videos])
    n = spk.numel()
    g = torch.Generator().manual_seed(seed)
    out = {"same_utterance": torch.arange(n)}
    out.update({name: torch.full((n,), -1) for name in PARTNERS[1:]})
    # Rows in chunks, so that the [rows, N] masks stay small.
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        same_spk = spk[rows, None] == spk[None, :]
        same_vid = vid[rows, None] == vid[None, :]
        not_self = rows[:, None] != torch.arange(n)[None, :]
        masks = {
            "same_video": same_vid & not_self,
            "same_speaker_other_video": same_spk & ~same_vid,
            "other_speaker": ~same_spk,
        }
        for name, mask in masks.items():
            # A uniform draw among the allowed columns: the argmax of random
            # keys set to -1 where a column is not allowed.
            keys = torch.rand(mask.shape, generator=g).masked_fill(~mask, -1.0)
            best = keys.argmax(dim=1)
            out[name][rows] = torch.where(
                mask.any(dim=1), best, torch.full_like(best, -1)
            )
    return out


def target_stats(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    center: torch.Tensor,
    student_temp: float,
    teacher_temp: float,
    partners: Dict[str, torch.Tensor],
) -> Dict[str, Dict[str, float]]:
    """Cross-entropy, entropy, KL and top-1 agreement per kind of partner.

    Also the effective number of prototypes the teacher uses over the whole
    set, ``exp(H(mean_j p_j))``.

    ``student_logits[i]`` is the student's output for a crop of utterance
    ``i``, ``teacher_logits[j]`` the teacher's for another crop of ``j``.

    Example
    -------
    >>> s = torch.tensor([[9.0, 0.0], [0.0, 9.0]])
    >>> t = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    >>> stats = target_stats(s, t, torch.zeros(1, 2), 1.0, 1.0,
    ...     {"same_utterance": torch.tensor([0, 1]),
    ...      "other": torch.tensor([1, -1])})
    >>> pairs = stats["partners"]
    >>> pairs["same_utterance"]["top1_agreement"], pairs["other"]["pairs"]
    (1.0, 1)
    >>> ce = {k: v["cross_entropy"] for k, v in pairs.items()}
    >>> ce["other"] > ce["same_utterance"], round(stats["prototypes_used"], 2)
    (True, 2.0)
    """
    log_q = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    p = F.softmax((teacher_logits.float() - center) / teacher_temp, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)
    top_t, top_s = p.argmax(dim=-1), log_q.argmax(dim=-1)
    out = {}
    for name, partner in partners.items():
        rows = torch.nonzero(partner >= 0).squeeze(1)
        if rows.numel() == 0:
            out[name] = {"pairs": 0}
            continue
        cols = partner[rows]
        ce = -(p[cols] * log_q[rows]).sum(dim=-1)
        out[name] = {
            "pairs": int(rows.numel()),
            "cross_entropy": float(ce.mean()),
            "teacher_entropy": float(entropy[cols].mean()),
            "kl": float((ce - entropy[cols]).mean()),
            "top1_agreement": float(
                (top_t[cols] == top_s[rows]).float().mean()
            ),
        }
    mean_p = p.mean(dim=0)
    used = torch.exp(-(mean_p * torch.log(mean_p.clamp_min(1e-12))).sum())
    return {"partners": out, "prototypes_used": float(used)}


def find_checkpoint(save_folder: str, epoch: Optional[int]):
    """The end-of-epoch checkpoint of ``epoch`` (the latest when None)."""
    from speechbrain_ssps.checkpoints import find_epoch_checkpoints

    found = find_epoch_checkpoints(save_folder)
    if epoch is not None:
        found = [c for c in found if c.meta.get("epoch") == epoch]
    if not found:
        what = f"epoch {epoch}" if epoch is not None else "any epoch"
        raise ValueError(f"{save_folder}: no checkpoint of {what}")
    return found[-1]


def load_run(run: str, checkpoint: str):
    """The run's hparams with the DINO modules of ``checkpoint`` loaded."""
    from hyperpyyaml import load_hyperpyyaml

    path = os.path.join(run, "hyperparams.yaml")
    if not os.path.isfile(path):
        raise ValueError(
            f"--run {run!r}: no hyperparams.yaml (a train.py run?)"
        )
    with open(path, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f)
    names = ("embedding_model", "head", "teacher_model", "teacher_head")
    missing = [n for n in names + ("ssl_loss",) if n not in hparams]
    if missing:
        raise ValueError(f"{path}: not a DINO run (no {', '.join(missing)})")
    for name in names + ("ssl_loss",):
        state = torch.load(
            os.path.join(checkpoint, f"{name}.ckpt"), map_location="cpu"
        )
        hparams[name].load_state_dict(state)
        hparams[name].eval()
    return hparams


def read_crops(rows: List[dict], num_samples: int, seed: int) -> torch.Tensor:
    """[2, N, num_samples]: two independent clean crops of every row."""
    from speechbrain_ssps.crops import load_mono, random_crop

    g = torch.Generator().manual_seed(seed)
    crops = torch.empty(2, len(rows), num_samples)
    for k, row in enumerate(rows):
        wav = load_mono(row["wav"])
        crops[0, k] = random_crop(wav, num_samples, generator=g)
        crops[1, k] = random_crop(wav, num_samples, generator=g)
    return crops


@torch.no_grad()
def logits(hparams, encoder, head, wavs: torch.Tensor, batch_size: int):
    """[N, out] head outputs of ``encoder`` on ``wavs`` [N, T], batched.

    Features and normalisation are the run's, through the library's
    :func:`~speechbrain_ssps.embeddings.feature_encoder`.
    """
    from speechbrain_ssps.embeddings import feature_encoder

    encode = feature_encoder(
        hparams["compute_features"], hparams["mean_var_norm"], encoder
    )
    out = []
    for chunk in wavs.split(batch_size):
        lengths = torch.ones(chunk.shape[0])
        out.append(head(encode(chunk, lengths).squeeze(1)))
    return torch.cat(out)


@torch.no_grad()
def measure(
    run: str,
    epoch: Optional[int] = None,
    train_csv: Optional[str] = None,
    max_utterances: int = 0,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """The diagnostic's results for one checkpoint of a DINO run."""
    checkpoint = find_checkpoint(os.path.join(run, "save"), epoch)
    hparams = load_run(run, str(checkpoint.path))
    train_csv = train_csv or os.path.join(run, "save", "train.csv")
    with open(train_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"wav", "spk_id", "video_id"} <= set(rows[0]):
        raise ValueError(f"{train_csv}: needs rows with wav, spk_id, video_id")
    if max_utterances and len(rows) > max_utterances:
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(rows), generator=g)[:max_utterances]
        rows = [rows[int(k)] for k in keep.sort().values]
    samples = int(
        round(hparams["global_crop_seconds"] * hparams["sample_rate"])
    )
    crops = read_crops(rows, samples, seed)
    student = logits(
        hparams,
        hparams["embedding_model"],
        hparams["head"],
        crops[0],
        batch_size,
    )
    teacher = logits(
        hparams,
        hparams["teacher_model"],
        hparams["teacher_head"].bottleneck,
        crops[1],
        batch_size,
    )
    teacher = hparams["teacher_head"].prototypes(teacher)
    loss = hparams["ssl_loss"]
    ckpt_epoch = int(checkpoint.meta["epoch"])
    partners = draw_partners(
        [r["spk_id"] for r in rows], [r["video_id"] for r in rows], seed
    )
    stats = target_stats(
        student,
        teacher,
        loss.center,
        loss.student_temp,
        loss.teacher_temperature(ckpt_epoch - 1),
        partners,
    )
    return {
        "run": run,
        "checkpoint": str(checkpoint.path),
        "epoch": ckpt_epoch,
        "utterances": len(rows),
        "crop_seconds": hparams["global_crop_seconds"],
        "stats": stats,
    }


def markdown(result: dict) -> str:
    """One table of the partner statistics."""
    lines = [
        f"DINO targets, epoch {result['epoch']} of {result['run']} "
        f"({result['utterances']} utterances, clean "
        f"{result['crop_seconds']} s crops, eval mode); teacher prototypes "
        f"used: {result['stats']['prototypes_used']:.1f}",
        "",
        "| partner of the anchor | pairs | H(p_j, q_i) | H(p_j) | KL | "
        "student top = partner's top |",
        "|---|---|---|---|---|---|",
    ]
    for name in PARTNERS:
        s = result["stats"]["partners"][name]
        if not s["pairs"]:
            lines.append(f"| {name} | 0 | – | – | – | – |")
            continue
        lines.append(
            f"| {name} | {s['pairs']} | {s['cross_entropy']:.3f} | "
            f"{s['teacher_entropy']:.3f} | {s['kl']:.3f} | "
            f"{100 * s['top1_agreement']:.1f} % |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a DINO train.py run")
    parser.add_argument("--epoch", type=int, default=None)
    parser.add_argument("--train-csv", default=None)
    parser.add_argument("--max-utterances", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None, help="results JSON")
    args = parser.parse_args(argv)
    result = measure(
        args.run,
        args.epoch,
        args.train_csv,
        args.max_utterances,
        args.seed,
        args.batch_size,
    )
    print(markdown(result))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
