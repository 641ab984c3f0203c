"""Stage two end to end on a tiny MiniVox: SSL export -> pseudo labels ->
supervised ECAPA (train_pl.py) -> export.py -> verify.py -> another
pseudo-labelling iteration from the stage-two export; plus bad inputs.
"""

import csv
import json
import os
import sys

import pytest
from recipe_helpers import RECIPE, run_script, verify_export

TINY_MODEL = ["--channels=[16,16,16,16,48]", "--emb_dim=32"]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ssl_run(corpus, tmp_path_factory):
    """One tiny SimCLR epoch on MiniVox, exported: (run folder, export)."""
    out = str(tmp_path_factory.mktemp("ssl") / "run")
    run_script(
        [
            "train.py",
            "hparams/minivox_simclr.yaml",
            f"--data_folder={corpus}",
            f"--output_folder={out}",
            "--batch_size=4",
            "--global_crop_seconds=0.5",
            "--num_workers=0",
            "--number_of_epochs=1",
            "--noprogressbar",
            *TINY_MODEL,
        ]
    )
    run_script(["export.py", out])
    return out, os.path.join(out, "export")


@pytest.fixture(scope="module")
def pl_module():
    """pseudo_label.py imported in-process (fast bad-input checks)."""
    sys.path.insert(0, RECIPE)
    try:
        import pseudo_label
    finally:
        sys.path.remove(RECIPE)
    return pseudo_label


def _pl_args(export, train_csv, out, k1=8, k2=4, *extra):
    return [
        f"--export_folder={export}",
        f"--train_csv={train_csv}",
        f"--output_folder={out}",
        f"--num_clusters={k1}",
        f"--num_speakers={k2}",
        "--device=cpu",
        *extra,
    ]


def test_pseudo_labels_train_export_verify_iterate(
    ssl_run, pl_module, corpus, tmp_path
):
    run, export = ssl_run
    train_csv = os.path.join(run, "save", "train.csv")
    original = _rows(train_csv)

    # 1. Pseudo labels from the SSL export.
    pl_dir = str(tmp_path / "pl1")
    run_script(["pseudo_label.py", *_pl_args(export, train_csv, pl_dir)])
    rows = _rows(os.path.join(pl_dir, "train_pl.csv"))
    assert [r["ID"] for r in rows] == [r["ID"] for r in original]
    assert [r["wav"] for r in rows] == [r["wav"] for r in original]
    assert [r["true_spk_id"] for r in rows] == [r["spk_id"] for r in original]
    labels = {r["spk_id"] for r in rows}
    assert len(labels) == 4
    assert all(label.startswith("pl") and len(label) == 7 for label in labels)
    with open(os.path.join(pl_dir, "pseudo_labels.json")) as f:
        summary = json.load(f)
    assert (summary["num_clusters"], summary["num_speakers"]) == (8, 4)
    assert summary["method"] == "kmeans-ahc"
    metrics = summary["metrics"]
    assert metrics["num_clusters"] == 4
    assert sum(metrics["sizes"]) == len(rows)
    for key in ("nmi_speaker", "ari_speaker", "nmi_video", "ari_video"):
        assert -1.0 <= metrics[key] <= 1.0, key
    assert 0.0 <= metrics["video_dominated_share"] <= 1.0
    assert summary["kmeans_metrics"]["num_clusters"] <= 8
    # A rerun with the same options leaves the outputs as they are.
    stamp = os.stat(os.path.join(pl_dir, "train_pl.csv")).st_mtime_ns
    assert pl_module.main(_pl_args(export, train_csv, pl_dir)) == summary
    assert os.stat(os.path.join(pl_dir, "train_pl.csv")).st_mtime_ns == stamp

    # 2. Stage two: 2 tiny epochs, encoder initialised from the SSL export,
    # with MiniVox's synthetic MUSAN / RIR folders (train.py's options).
    from speechbrain_ssps.minivox.augmentation import generate_augmentation

    aug = generate_augmentation(
        tmp_path / "aug",
        seed=1,
        num_noise=1,
        num_music=1,
        num_speech=1,
        num_rirs=1,
        duration=1.0,
        workers=1,
    )
    out = str(tmp_path / "stage2")
    run_script(
        [
            "train_pl.py",
            "hparams/minivox_pl_ecapa.yaml",
            f"--data_folder={corpus}",
            f"--train_csv={pl_dir}/train_pl.csv",
            f"--output_folder={out}",
            f"--init_from={export}",
            "--batch_size=4",
            "--sentence_len=0.5",
            "--number_of_epochs=2",
            "--step_size=3",
            "--augment_prob=1.0",
            f"--musan_folder={aug['musan_folder']}",
            f"--rir_folder={aug['rir_folder']}",
            "--noprogressbar",
            *TINY_MODEL,
        ]
    )
    with open(os.path.join(out, "train_log.txt")) as f:
        epochs = [line for line in f if line.startswith("epoch:")]
    assert [e.split(",")[0] for e in epochs] == ["epoch: 1", "epoch: 2"]
    assert "error_rate" in epochs[-1] and "nan" not in epochs[-1].lower()
    assert os.path.getsize(os.path.join(out, "curves.png")) > 0
    augment = os.path.join(out, "save", "augment")
    for name in ("musan_noise", "musan_music", "musan_speech", "rir"):
        assert len(_rows(os.path.join(augment, f"{name}.csv"))) == 1, name
    with open(os.path.join(out, "save", "label_encoder.txt")) as f:
        assert sum(1 for line in f if line.startswith("'pl")) == 4

    # 3. export.py and verify.py unchanged on the stage-two folder.
    run_script(["export.py", out, "--average=2"])
    export2 = os.path.join(out, "export")
    assert os.path.isfile(os.path.join(export2, "embedding_model.ckpt"))
    verification = os.path.join(out, "verification")
    results = verify_export(export2, f"{run}/save", verification)
    assert 0.0 <= results["O"]["eer_percent"] <= 100.0
    assert results["O"]["num_trials"] > 0

    # 4. Next iteration from the stage-two export (centre crops, plain
    # k-means), reading true labels through true_spk_id.
    pl2 = str(tmp_path / "pl2")
    pl_module.main(
        _pl_args(
            export2,
            f"{pl_dir}/train_pl.csv",
            pl2,
            4,
            4,
            "--method=kmeans",
            "--crop_seconds=0.6",
            "--batch_size=5",
        )
    )
    rows2 = _rows(os.path.join(pl2, "train_pl.csv"))
    assert [r["true_spk_id"] for r in rows2] == [r["spk_id"] for r in original]
    with open(os.path.join(pl2, "pseudo_labels.json")) as f:
        summary2 = json.load(f)
    assert summary2["metrics"]["num_true_speakers"] == 4  # true labels
    assert summary2["options"]["crop_seconds"] == 0.6


def _error(pl_module, args):
    with pytest.raises(ValueError) as info:
        pl_module.main(args)
    return str(info.value)


def test_pseudo_label_bad_inputs(ssl_run, pl_module, tmp_path):
    run, export = ssl_run
    train_csv = os.path.join(run, "save", "train.csv")
    out = str(tmp_path / "pl")
    num_rows = len(_rows(train_csv))

    # An export folder without an encoder.
    empty = tmp_path / "not_an_export"
    empty.mkdir()
    (empty / "hyperparams.yaml").write_text("n_mels: 40\n")
    message = _error(pl_module, _pl_args(str(empty), train_csv, out))
    assert "--export_folder" in message and "embedding_model.ckpt" in message
    # K2 > K1.
    message = _error(pl_module, _pl_args(export, train_csv, out, 4, 5))
    assert "--num_speakers=5" in message and "--num_clusters=4" in message
    # K1 larger than the manifest.
    message = _error(pl_module, _pl_args(export, train_csv, out, 999, 4))
    assert "--num_clusters=999" in message and str(num_rows) in message
    assert train_csv in message
    # A manifest missing a column.
    bad_csv = tmp_path / "no_wav.csv"
    bad_csv.write_text("ID,duration,spk_id\na,1.0,s\n")
    message = _error(pl_module, _pl_args(export, str(bad_csv), out))
    assert str(bad_csv) in message and "wav" in message
    message = _error(pl_module, _pl_args(export, str(tmp_path / "x.csv"), out))
    assert "not found" in message
    assert not os.path.exists(out)  # nothing written by any of these

    # An existing output from other options is refused, left untouched.
    os.makedirs(out)
    for name in ("train_pl.csv", "pseudo_labels.json"):
        with open(os.path.join(out, name), "w") as f:
            f.write("precious\n")
    message = _error(pl_module, _pl_args(export, train_csv, out))
    assert "--overwrite" in message and out in message
    for name in ("train_pl.csv", "pseudo_labels.json"):
        with open(os.path.join(out, name)) as f:
            assert f.read() == "precious\n"

    # The command line reports the error without a traceback.
    result = run_script(
        ["pseudo_label.py", *_pl_args(export, train_csv, out, 4, 5)],
        check=False,
    )
    assert result.returncode != 0
    assert "pseudo_label.py: error: --num_speakers=5" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_pl_refuses_a_manifest_without_labels(ssl_run, corpus, tmp_path):
    run, _ = ssl_run
    rows = _rows(os.path.join(run, "save", "train.csv"))
    unlabelled = tmp_path / "unlabelled.csv"
    with open(unlabelled, "w", newline="") as f:
        writer = csv.DictWriter(f, ["ID", "duration", "wav"])
        writer.writeheader()
        writer.writerows(
            {k: r[k] for k in ("ID", "duration", "wav")} for r in rows
        )
    out = tmp_path / "stage2"
    result = run_script(
        [
            "train_pl.py",
            "hparams/minivox_pl_ecapa.yaml",
            f"--data_folder={corpus}",
            f"--train_csv={unlabelled}",
            f"--output_folder={out}",
        ],
        check=False,
    )
    assert result.returncode != 0
    assert "train_pl.py: error" in result.stderr
    assert str(unlabelled) in result.stderr and "spk_id" in result.stderr
    assert "Traceback" not in result.stderr
    # Refused before the experiment folder is written.
    assert not (out / "hyperparams.yaml").exists()
    assert not (out / "log.txt").exists()
