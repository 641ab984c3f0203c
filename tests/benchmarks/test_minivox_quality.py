"""The MiniVox quality benchmark's run set-up (no training here).

The benchmark itself trains for minutes to hours and is not run in CI; these
tests pin what each condition is given, since an error there (a baseline
trained with SSPS, an oracle without it, a budget differing between
conditions) would silently invalidate the comparison.
"""

import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "minivox_quality",
    os.path.join(REPO, "benchmarks", "minivox_quality.py"),
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def as_dict(args):
    return dict(a.removeprefix("--").split("=", 1) for a in args)


@pytest.mark.parametrize("framework", bench.FRAMEWORKS)
def test_every_condition_gets_the_same_budget(framework):
    params = bench.corpus_params()
    overrides = bench.run_overrides(framework, params)
    args = {
        c: as_dict(bench.condition_args(framework, c, overrides)[1])
        for c in ("baseline", "ssps", "oracle")
    }
    for key in ("number_of_epochs", "schedule_epochs"):
        values = {c: a[key] for c, a in args.items()}
        assert len(set(values.values())) == 1, values
        assert values["baseline"] == str(bench.BUDGET[framework][key])
    # The baseline is the plain yaml with no SSPS option at all.
    plain, ssps_yaml = bench.YAMLS[framework]
    assert bench.condition_args(framework, "baseline", overrides)[0] == plain
    assert not [k for k in args["baseline"] if k.startswith("ssps_")]
    assert bench.condition_args(framework, "ssps", overrides)[0] == ssps_yaml
    assert "ssps_oracle" not in args["ssps"]
    assert args["oracle"]["ssps_oracle"] == "True"
    assert (
        args["ssps"]["ssps_start_epoch"] == args["oracle"]["ssps_start_epoch"]
    )


def test_ssps_sizes_follow_the_corpus():
    params = bench.corpus_params("speakers=30,videos=4,utterances=5")
    assert params["speakers"] == 30 and params["channel-strength"] == 0.25
    overrides = bench.run_overrides("simclr", params)
    assert overrides["ssps_queue_size"] == str(30 * 4 * 5)
    assert overrides["ssps_num_clusters"] == str(30 * 4 // 2)


def test_train_args_replace_budget_keys():
    params = bench.corpus_params()
    overrides = bench.run_overrides(
        "dino",
        params,
        ["--number_of_epochs=7", "--ssps_start_epoch=5", "--lr=0.2"],
    )
    _, args = bench.condition_args("dino", "ssps", overrides)
    # Each key given once (hyperpyyaml refuses duplicate overrides).
    keys = [a.split("=", 1)[0] for a in args]
    assert len(keys) == len(set(keys))
    got = as_dict(args)
    assert got["number_of_epochs"] == "7"
    assert got["ssps_start_epoch"] == "5"
    assert got["lr"] == "0.2"


def test_logit_queue_condition_stores_full_logits():
    overrides = bench.run_overrides("dino", bench.corpus_params())
    yaml, args = bench.condition_args("dino", "ssps_logits", overrides)
    got = as_dict(args)
    assert yaml == bench.YAMLS["dino"][1]
    assert got["dino_queue"] == "logits"
    assert "ssps_pos_dim" not in got  # follows from dino_queue in train.py
    with pytest.raises(ValueError, match="only applies to dino"):
        bench.condition_args("simclr", "ssps_logits", overrides)


def test_false_negative_masking_condition_is_ssps_plus_the_mask():
    overrides = bench.run_overrides("simclr", bench.corpus_params())
    yaml, args = bench.condition_args("simclr", "ssps_fn_mask", overrides)
    ssps_yaml, ssps_args = bench.condition_args("simclr", "ssps", overrides)
    assert yaml == ssps_yaml
    assert as_dict(args) == {
        **as_dict(ssps_args),
        "ssps_mask_false_negatives": "True",
    }
    with pytest.raises(ValueError, match="only applies to simclr"):
        bench.condition_args("dino", "ssps_fn_mask", overrides)
    assert bench.FRAMEWORK_ONLY["ssps_fn_mask"] == "simclr"


@pytest.mark.parametrize(
    "bad",
    [
        "speakers",
        "nope=3",
        "speakers=3,=4",
        "channel_strength=0.1",
        "speakers=1.5",
        "channel-strength=strong",
    ],
)
def test_bad_corpus_params_name_the_option(bad):
    with pytest.raises(ValueError, match="--corpus-params"):
        bench.corpus_params(bad)


@pytest.mark.parametrize("bad", ["epochs=3", "--lr", "-lr=1"])
def test_bad_train_args_name_the_option(bad):
    with pytest.raises(ValueError, match="--train-args"):
        bench.parse_overrides([bad])


def test_summary_is_mean_and_sd_over_seeds():
    runs = [
        {"seed": 1, "eer": 10.0, "mindcf": 0.5},
        {"seed": 2, "eer": 14.0, "mindcf": 0.7},
    ]
    s = bench.summarise(runs)
    assert s["eer_mean"] == pytest.approx(12.0)
    assert s["eer_sd"] == pytest.approx(2.8284271, rel=1e-6)
    assert s["mindcf_mean"] == pytest.approx(0.6)
    # A metric missing in some runs is not averaged over the others.
    assert "pp_speaker_acc_mean" not in s
    table = bench.markdown_table({"simclr": {"baseline": s}})
    assert "| simclr | same utterance | 12.00 ± 2.83 |" in table


def test_conditions_continue_from_the_baseline_of_their_seed(tmp_path):
    overrides = bench.run_overrides("simclr", bench.corpus_params())
    work = str(tmp_path)
    base = bench.plain_sharing_args("simclr", "baseline", 7, work, overrides)
    # The baseline keeps every epoch, so ssps_start_epoch - 2 is on disk.
    assert as_dict(base) == {
        "keep_checkpoints": overrides["number_of_epochs"]
    }
    for condition in ("ssps", "oracle"):
        got = as_dict(
            bench.plain_sharing_args("simclr", condition, 7, work, overrides)
        )
        assert got == {
            "continue_from": os.path.join(
                work, "simclr", "baseline", "7", "save"
            )
        }


def test_epoch_stats_reads_every_epoch_of_a_train_log(tmp_path):
    log = tmp_path / "train_log.txt"
    log.write_text(
        "epoch: 1, lr: 1.0e-03 - train loss: 2.5, train coverage: 0.0\n"
        "epoch: 2, lr: 9.0e-04 - train loss: 2.0, train speaker_acc: "
        "1.5e-01, train video_acc: 3.0e-02\n\n"
    )
    stats = bench.epoch_stats(str(log))
    assert sorted(stats) == [1, 2]
    assert stats[1] == {"loss": 2.5, "coverage": 0.0}
    assert stats[2]["speaker_acc"] == pytest.approx(0.15)


def test_paper_condition_fills_by_a_pass_and_queues_k_entries():
    overrides = bench.run_overrides("simclr", bench.corpus_params())
    yaml, args = bench.condition_args("simclr", "ssps_paper", overrides)
    keys = [a.removeprefix("--").split("=", 1)[0] for a in args]
    assert len(keys) == len(set(keys))  # each override given once
    got = as_dict(args)
    assert yaml == bench.YAMLS["simclr"][1]
    assert got["ssps_fill"] == "pass"
    assert got["ssps_queue_size"] == overrides["ssps_num_clusters"]
    assert got["ssps_queue_size"] != overrides["ssps_queue_size"]  # not N


def test_epoch_plot_has_one_line_per_condition(tmp_path):
    import matplotlib.image

    def runs(offset):
        return {
            "runs": [
                {
                    "per_epoch": {
                        str(e): {"loss": 5 - e / 4, "speaker_acc": offset + e / 10}
                        for e in (3, 4, 5)
                    }
                }
            ]
        }

    results = {"simclr": {"ssps": runs(0.1), "oracle": runs(0.5)}}
    path = tmp_path / "curves.png"
    bench.plot_epochs(results, "simclr", str(path), ssps_start=4)
    image = matplotlib.image.imread(path)
    assert image.shape[1] > image.shape[0]  # panels on a 3-wide grid
    assert image.std() > 0.05  # something was drawn


def test_every_framework_has_both_yamls_in_the_recipe():
    hparams = os.path.join(REPO, "recipes", "VoxCeleb", "SSPS", "hparams")
    assert set(bench.YAMLS) == set(bench.FRAMEWORKS) == set(bench.BUDGET)
    for plain, ssps_yaml in bench.YAMLS.values():
        assert os.path.isfile(os.path.join(hparams, plain)), plain
        assert os.path.isfile(os.path.join(hparams, ssps_yaml)), ssps_yaml
