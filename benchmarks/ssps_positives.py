"""How good would SSPS's pseudo-positives be, for a given encoder and K?

SSPS only helps when the cluster it draws a positive from holds the
anchor's speaker in another recording; it hurts when that cluster is
another speaker with a similar channel. This diagnostic answers, without
training, how often that happens for a trained encoder (e.g. the plain
SSL model at the epoch where SSPS would start) on a labelled set laid out
like VoxCeleb:

1. embeds every utterance of a prepared ``train.csv`` (``ID, wav,
   spk_id, video_id``) with an exported encoder (``export.py``);
2. runs the library's own :class:`speechbrain_ssps.ssps.SSPS` on these
   embeddings (reference queue = all utterances, k-means with K clusters,
   SCS or NCS with M neighbours) and draws one pseudo-positive per
   utterance;
3. reports, per (K, sampling, M): pseudo-positive speaker and video
   accuracy and the NMI of the clusters with speakers and videos.

Two label-based references frame the numbers: ``chance`` (a random other
utterance has the anchor's speaker) and ``nn_other_video`` (the nearest
neighbour among the utterances of *other* videos has the anchor's speaker:
roughly the best that any embedding-similarity sampling could reach with
this encoder). The labels are used for these diagnostics only.

Run::

    python benchmarks/ssps_positives.py \\
        --export results/minivox_simclr/1986/export \\
        --train-csv results/minivox_simclr/1986/save/train.csv \\
        --clusters 75,150,300,450,900 --out positives.json
"""

import argparse
import csv
import json
import os

import torch


def load_rows(train_csv):
    """The manifest rows (needs ``ID``, ``wav``, ``spk_id``, ``video_id``)."""
    with open(train_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{train_csv}: no rows")
    missing = {"ID", "wav", "spk_id", "video_id"} - set(rows[0])
    if missing:
        raise ValueError(f"{train_csv}: missing columns {sorted(missing)}")
    return rows


def embed(export_folder, rows, device="cpu"):
    """[N, D] embeddings of the manifest's utterances (whole files)."""
    from speechbrain_ssps.embeddings import embed_utterances
    from speechbrain_ssps.inference import load_exported

    encoder = load_exported(export_folder, device)
    emb = embed_utterances(
        encoder, {r["ID"]: r["wav"] for r in rows}, num_workers=1
    )
    return torch.stack([emb[r["ID"]].flatten() for r in rows]).float()


def codes(labels):
    """Integer codes of hashable labels."""
    index = {}
    return torch.tensor([index.setdefault(x, len(index)) for x in labels])


def label_references(x, speakers, videos):
    """``chance`` and ``nn_other_video`` speaker accuracies (see above)."""
    x = torch.nn.functional.normalize(x, dim=1)
    n = x.shape[0]
    same_spk = speakers[:, None] == speakers[None, :]
    chance = (same_spk.sum() - n).item() / (n * (n - 1))
    sim = x @ x.T
    sim[videos[:, None] == videos[None, :]] = -float("inf")
    nearest = sim.argmax(dim=1)
    nn_acc = (speakers[nearest] == speakers).float().mean().item()
    return {"chance": chance, "nn_other_video": nn_acc}


def pseudo_positive_stats(
    x, speakers, videos, num_clusters, sampling, neighbors, seed
):
    """SSPS's pseudo-positive accuracies for one setting (one draw each).

    Arguments
    ---------
    x : torch.Tensor
        [N, D] reference embeddings (one per utterance).
    speakers, videos : torch.Tensor
        [N] integer labels (diagnostics only).
    num_clusters, neighbors : int
        K and M.
    sampling : str
        ``"ncs"``, ``"scs"``, ``"knn"`` (M nearest queue entries, no
        k-means) or ``"centroid"`` (the drawn cluster's centroid; its
        accuracies come from one member of that cluster).
    seed : int
        Seeds the k-means and the draws.

    Returns
    -------
    dict
        ``speaker_acc``, ``video_acc``, ``coverage``, ``nmi_speaker``,
        ``nmi_video`` (see :meth:`SSPS.metrics`).
    """
    from speechbrain_ssps.ssps import SSPS

    n = x.shape[0]
    # The centroid sampler swaps in reference-space vectors.
    pos_dim = x.shape[1] if sampling == "centroid" else 1
    ssps = SSPS(
        num_utterances=n,
        repr_dim=x.shape[1],
        pos_dim=pos_dim,
        queue_size=n,
        num_clusters=num_clusters,
        sampling=sampling,
        num_neighbors=neighbors,
        start_epoch=2,
        seed=seed,
    )
    ssps.set_labels(speakers, videos)
    index = torch.arange(n)
    ssps.on_epoch_start(1)
    ssps.update(index, x, torch.zeros(1, n, pos_dim))
    ssps.on_epoch_start(2)
    ssps.sample(index)
    stats = ssps.metrics()
    for key in ("nmi_speaker", "nmi_video"):  # knn makes no clusters
        stats.setdefault(key, float("nan"))
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True, help="export.py folder")
    parser.add_argument("--train-csv", required=True)
    parser.add_argument(
        "--clusters", default="", help="K values, comma-separated"
    )
    parser.add_argument(
        "--sampling", default="ncs,scs", help="ncs, scs, knn, centroid"
    )
    parser.add_argument(
        "--neighbors", default="1", help="M values (ncs, knn, centroid)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)

    rows = load_rows(args.train_csv)
    speakers = codes(r["spk_id"] for r in rows)
    videos = codes(r["video_id"] for r in rows)
    num_videos = int(videos.max()) + 1
    num_speakers = int(speakers.max()) + 1
    clusters = [int(k) for k in args.clusters.split(",") if k] or sorted(
        {num_speakers // 2, num_speakers, num_videos // 2, num_videos}
    )
    x = embed(args.export, rows, args.device)
    report = {
        "export": os.path.abspath(args.export),
        "utterances": len(rows),
        "speakers": num_speakers,
        "videos": num_videos,
        **label_references(x, speakers, videos),
        "settings": [],
    }
    print(
        f"{len(rows)} utterances, {num_speakers} speakers, {num_videos} "
        f"videos; chance {report['chance']:.3f}, nearest other-video "
        f"neighbour same speaker {report['nn_other_video']:.3f}"
    )
    print("| K | sampling | M | PP spk | PP video | NMI spk | NMI video |")
    print("|---|---|---|---|---|---|---|")
    for k in clusters:
        for sampling in args.sampling.split(","):
            for m in [int(v) for v in args.neighbors.split(",")]:
                if sampling == "scs" and m != 1:
                    continue
                stats = pseudo_positive_stats(
                    x, speakers, videos, k, sampling, m, args.seed
                )
                report["settings"].append(
                    {"K": k, "sampling": sampling, "M": m, **stats}
                )
                print(
                    f"| {k} | {sampling} | {'-' if sampling == 'scs' else m} "
                    f"| {stats['speaker_acc']:.3f} | {stats['video_acc']:.3f} "
                    f"| {stats['nmi_speaker']:.3f} | {stats['nmi_video']:.3f} |"
                )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
