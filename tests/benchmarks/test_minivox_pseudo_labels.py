"""The pseudo-label benchmark: its plan, its report, one tiny real run.

The full benchmark trains for over an hour; these tests pin the comparison
(every stage-two run of a seed gets the same budget, iteration 2 starts from
iteration 1's export, SSPS continues the baseline's save folder, the upper
bound uses the true labels, seeds and augmentation reach every script),
the mean / sd over seeds, the reuse of finished runs and the order of the
runs (a step starts only when its inputs exist, whatever ``--jobs``), with
a fake runner; then one tiny end-to-end run of ``main()``.
"""

import importlib.util
import json
import math
import os
import statistics
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "minivox_pseudo_labels",
    os.path.join(REPO, "benchmarks", "minivox_pseudo_labels.py"),
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

STAGE_TWO = [r for r in bench.ROWS if not r.startswith("ssl_")]
AUG = ["--musan_folder=/aug/musan", "--rir_folder=/aug/RIRS_NOISES"]
FAKE_CORPUS = "speakers=4,videos=2,utterances=2,test-speakers=2"


def as_dict(args):
    return dict(
        a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a
    )


def step(unit, label):
    return dict(unit["steps"])[label]


def make_plan(work, seeds=(1986, 1987), augmentation=AUG):
    params = bench.quality.corpus_params(FAKE_CORPUS)
    ssl = bench.quality.run_overrides(
        "simclr", params, ["--number_of_epochs=5", "--emb_dim=32"]
    )
    budget = bench.stage_two_budget(ssl, {"sentence_len": "0.5"})
    units = [
        unit
        for seed in seeds
        for unit in bench.seed_plan(
            work, "/corpus", seed, ssl, budget, (4, 3), "cpu", augmentation
        )
    ]
    return ssl, {u["name"]: u for u in units}, units


def test_plan_rows_and_dependencies(tmp_path):
    _, by_name, units = make_plan(str(tmp_path))
    assert len(by_name) == len(units) == 2 * len(bench.ROWS)
    seen = set()
    for unit in units:  # every run after the runs it needs
        assert set(unit["needs"]) <= seen, unit["name"]
        seen.add(unit["name"])
        labels = [label for label, _ in unit["steps"]]
        assert labels[-2:] == ["export", "verify"]
        verify = as_dict(step(unit, "verify"))
        base = f"{tmp_path}/simclr/baseline/{unit['seed']}"
        assert verify["prep_folder"] == f"{base}/save"
        assert verify["export_folder"] == f"{unit['folder']}/export"


def test_stage_two_runs_of_a_seed_share_one_budget(tmp_path):
    _, by_name, _ = make_plan(str(tmp_path))
    for seed in (1986, 1987):
        trains = [step(by_name[f"{r}/{seed}"], "train") for r in STAGE_TWO]
        assert all(t[:2] == ["train_pl.py", bench.PL_YAML] for t in trains)
        budgets = [
            {
                k: v
                for k, v in as_dict(t).items()
                if k not in ("train_csv", "output_folder", "init_from")
            }
            for t in trains
        ]
        assert all(b == budgets[0] for b in budgets)
        assert budgets[0]["seed"] == str(seed)
        assert budgets[0]["sentence_len"] == "0.5"
        # The SSL model size reaches stage two (--init_from must fit).
        assert budgets[0]["emb_dim"] == "32"
        assert budgets[0]["number_of_epochs"] == str(
            bench.PL_BUDGET["number_of_epochs"]
        )


def test_iterations_chain_exports_and_supervised_uses_true_labels(tmp_path):
    ssl, by_name, _ = make_plan(str(tmp_path))
    w = str(tmp_path)
    for encoder in bench.ENCODERS:
        ssl_export = f"{w}/simclr/{encoder}/1987/export"
        it1 = by_name[f"pl_iter1_{encoder}/1987"]
        it2 = by_name[f"pl_iter2_{encoder}/1987"]
        labels1 = as_dict(step(it1, "pseudo_label"))
        labels2 = as_dict(step(it2, "pseudo_label"))
        assert labels1["export_folder"] == ssl_export
        assert as_dict(step(it1, "train"))["init_from"] == ssl_export
        assert labels2["export_folder"] == f"{it1['folder']}/export"
        assert as_dict(step(it2, "train"))["init_from"] == (
            f"{it1['folder']}/export"
        )
        assert it2["needs"] == [it1["name"]]
        for labels, unit in ((labels1, it1), (labels2, it2)):
            assert (
                labels["train_csv"]
                == f"{w}/simclr/baseline/1987/save/train.csv"
            )
            assert (labels["num_clusters"], labels["num_speakers"]) == (
                "4",
                "3",
            )
            assert labels["seed"] == "1987"
            assert as_dict(step(unit, "train"))["train_csv"] == (
                f"{unit['folder']}/labels/train_pl.csv"
            )
    sup = by_name["supervised/1987"]
    assert "pseudo_label" not in dict(sup["steps"])
    got = as_dict(step(sup, "train"))
    assert got["train_csv"] == f"{w}/simclr/baseline/1987/save/train.csv"
    assert got["init_from"] == f"{w}/simclr/baseline/1987/export"


def test_ssps_continues_the_baseline_as_the_quality_benchmark(tmp_path):
    ssl, by_name, _ = make_plan(str(tmp_path))
    base = step(by_name["ssl_baseline/1986"], "train")
    ssps = step(by_name["ssl_ssps/1986"], "train")
    assert base[1] == "hparams/minivox_simclr.yaml"
    assert ssps[1] == "hparams/minivox_simclr_ssps.yaml"
    b, s = as_dict(base), as_dict(ssps)
    assert b["keep_checkpoints"] == ssl["number_of_epochs"] == "5"
    assert s["continue_from"] == f"{tmp_path}/simclr/baseline/1986/save"
    assert by_name["ssl_ssps/1986"]["needs"] == ["ssl_baseline/1986"]
    for key in ("number_of_epochs", "schedule_epochs", "emb_dim"):
        assert b[key] == s[key]
    assert not [k for k in b if k.startswith("ssps_")]
    # Queue and K follow the corpus as in minivox_quality (16 utterances).
    assert (s["ssps_queue_size"], s["ssps_num_clusters"]) == ("16", "4")
    assert s["ssps_start_epoch"] == str(
        bench.quality.BUDGET["simclr"]["ssps_start_epoch"]
    )


@pytest.mark.parametrize("augmentation", [AUG, []])
def test_seed_and_augmentation_reach_every_script(tmp_path, augmentation):
    _, _, units = make_plan(str(tmp_path), augmentation=augmentation)
    for unit in units:
        for label, args in unit["steps"]:
            got = as_dict(args)
            if args[0] in ("train.py", "train_pl.py", "pseudo_label.py"):
                assert got["seed"] == str(unit["seed"]), (unit["name"], label)
            if args[0] in ("train.py", "train_pl.py"):
                assert [a for a in args if a in AUG] == augmentation


def test_options_are_checked():
    with pytest.raises(ValueError, match="--pl-args.*seed"):
        bench.parse_args_option("--seed=3", "--pl-args")
    with pytest.raises(ValueError, match="--ssl-args"):
        bench.parse_args_option("epochs=3", "--ssl-args")
    assert bench.default_clusters(bench.quality.CORPUS) == (450, 188)
    tiny = bench.quality.corpus_params(FAKE_CORPUS)
    assert bench.default_clusters(tiny) == (4, 4)
    assert bench.seed_list(2, 5) == [1991, 1992]


class FakeRunner:
    """Writes what each recipe script would, checking its inputs exist."""

    def __init__(self, eer=lambda folder: 10.0):
        self.eer, self.calls = eer, []

    def __call__(self, cmd, cwd, log):
        script, *args = cmd[1:]
        got = as_dict(args)
        self.calls.append(cmd)
        if script in ("train.py", "train_pl.py"):
            for key in ("continue_from", "init_from", "train_csv"):
                if key in got:
                    assert os.path.exists(got[key]), (script, key)
            time.sleep(0.005)  # a run started too early finds no input
            save = os.path.join(got["output_folder"], "save")
            os.makedirs(save, exist_ok=True)
            with open(os.path.join(save, "train.csv"), "w") as fout:
                fout.write("ID,wav,spk_id\n")
        elif script == "export.py":
            assert os.path.isdir(os.path.join(args[0], "save"))
            os.makedirs(os.path.join(args[0], "export"), exist_ok=True)
        elif script == "pseudo_label.py":
            assert os.path.isdir(got["export_folder"])
            os.makedirs(got["output_folder"], exist_ok=True)
            seed = int(got["seed"])
            metrics = {k: 0.1 * (seed - 1985) for k in bench.LABEL_METRICS}
            metrics["sizes"] = [3, 1]
            for name in ("pseudo_labels.json", "train_pl.csv"):
                with open(os.path.join(got["output_folder"], name), "w") as f:
                    json.dump({"metrics": metrics}, f)
        elif script == "verify.py":
            assert os.path.isdir(got["export_folder"])
            assert os.path.isfile(os.path.join(got["prep_folder"], "train.csv"))
            out = got["output_folder"]
            os.makedirs(out, exist_ok=True)
            eer = self.eer(out)
            with open(os.path.join(out, "results.json"), "w") as fout:
                json.dump(
                    {"O": {"eer_percent": eer, "min_dcf": eer / 100}}, fout
                )
        return 0.5


@pytest.fixture
def no_generation(monkeypatch):
    """Neither the corpus nor the augmentation folders are generated."""
    made = []
    monkeypatch.setattr(bench.quality, "make_corpus", lambda *a: 0.0)

    def augmentation(folder, log, seed):
        made.append(seed)
        return {"folder": folder, "seed": seed}, AUG

    monkeypatch.setattr(bench.quality, "make_augmentation", augmentation)
    return made


def fake_eer(folder):
    """EER 2 x (seed - 1985), plus 5 for the supervised runs."""
    seed = int(folder.rstrip("/").split("/")[-2])
    return 2.0 * (seed - 1985) + (5.0 if "/supervised/" in folder else 0.0)


def fake_main(tmp_path, runner, *extra):
    return bench.main(
        [
            f"--out={tmp_path}/out/results.json",
            f"--corpus-params={FAKE_CORPUS}",
            "--seeds=3",
            "--num-clusters=4",
            "--num-speakers=3",
            *extra,
        ],
        runner=runner,
    )


def test_summary_is_mean_and_sd_over_seeds(tmp_path, no_generation):
    # Three jobs at once: the fake runner fails a step whose inputs are
    # missing, so this also checks that every run waits for its needs.
    report = fake_main(tmp_path, FakeRunner(fake_eer), "--jobs=3")
    assert no_generation == [0]  # augmentation made once, corpus seed 0
    summary = report["summary"]
    assert list(summary) == list(bench.ROWS)
    for row, s in summary.items():
        offset = 5.0 if row == "supervised" else 0.0
        assert s["num_seeds"] == 3 and s["seeds"] == [1986, 1987, 1988]
        assert s["eer_mean"] == pytest.approx(4.0 + offset)
        assert s["eer_sd"] == pytest.approx(2.0)
        assert s["mindcf_mean"] == pytest.approx((4.0 + offset) / 100)
        if row.startswith("pl_iter"):  # trained on pseudo labels
            values = [0.1, 0.2, 0.3]
            assert s["nmi_speaker_mean"] == pytest.approx(0.2)
            assert s["ari_video_sd"] == pytest.approx(statistics.stdev(values))
        else:
            assert "nmi_speaker_mean" not in s
    runs = report["runs"]["pl_iter2_ssps"]
    assert [r["seed"] for r in runs] == [1986, 1987, 1988]
    assert "sizes" not in runs[0]["labels"]
    setup = report["setup"]
    assert setup["jobs"] == 3 and setup["seeds"] == [1986, 1987, 1988]
    assert (setup["num_clusters"], setup["num_speakers"]) == (4, 3)
    assert setup["wall_seconds"]["supervised/1988"]["total"] == 1.5
    with open(tmp_path / "out" / "results.json") as fin:
        assert json.load(fin)["summary"] == summary
    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    assert table[2].startswith("| ssl_baseline | SimCLR | 4.00 ± 2.00 |")
    assert "| supervised | stage two, true labels | 9.00 ± 2.00 |" in table[8]
    assert "| 0.200 ± 0.100 |" in table[4]
    assert "3 seed(s)" in table[-1] and "augmentation on" in table[-1]


def test_finished_runs_are_reused(tmp_path, no_generation):
    fake_main(tmp_path, FakeRunner(fake_eer), "--seeds=1")
    again = FakeRunner(fake_eer)
    report = fake_main(tmp_path, again, "--seeds=1")
    assert again.calls == []
    assert report["setup"]["wall_seconds"]["ssl_ssps/1986"]["reused"]
    # An interrupted run (no verification yet) runs again, alone.
    unit = tmp_path / "out" / "results_runs" / "pl_iter2" / "baseline" / "1986"
    os.remove(unit / "verification" / "results.json")
    third = FakeRunner(fake_eer)
    fake_main(tmp_path, third, "--seeds=1")
    scripts = [c[1] for c in third.calls]
    assert scripts == [
        "pseudo_label.py",
        "train_pl.py",
        "export.py",
        "verify.py",
    ]
    # A finished run made with other options is not silently reused.
    with pytest.raises(ValueError, match="other options"):
        fake_main(tmp_path, FakeRunner(), "--seeds=1", "--pl-args=--lr=0.1")


def test_no_augmentation_passes_no_folders(tmp_path, no_generation):
    runner = FakeRunner(fake_eer)
    report = fake_main(tmp_path, runner, "--seeds=1", "--no-augmentation")
    assert no_generation == [] and report["setup"]["augmentation"] is None
    assert not [a for c in runner.calls for a in c if "_folder=/aug" in a]
    assert "augmentation off" in (tmp_path / "out" / "results.md").read_text()


def test_options_errors_name_the_option(tmp_path, no_generation):
    with pytest.raises(SystemExit):
        fake_main(tmp_path, FakeRunner(), "--ssl-args=--output_folder=x")
    with pytest.raises(SystemExit):
        fake_main(tmp_path, FakeRunner(), "--corpus-params=nope=1")
    with pytest.raises(SystemExit):  # continue_from needs epoch >= 1 kept
        fake_main(tmp_path, FakeRunner(), "--ssl-args=--ssps_start_epoch=2")
    with pytest.raises(SystemExit):
        fake_main(tmp_path, FakeRunner(), "--num-speakers=5")
    assert not (tmp_path / "out" / "results_runs" / "simclr").exists()


def test_failed_run_stops_the_benchmark(tmp_path, no_generation):
    def failing(cmd, cwd, log):
        if cmd[1] == "train_pl.py":
            raise RuntimeError("boom")
        return FakeRunner(fake_eer)(cmd, cwd, log)

    with pytest.raises(RuntimeError, match="boom"):
        fake_main(tmp_path, failing, "--seeds=1", "--jobs=2")
    assert not (tmp_path / "out" / "results.json").exists()


# The tiny end-to-end run: MiniVox of 4 training speakers x 2 videos x 2
# utterances; tiny ECAPA (tests/recipes' sizes), 3 SSL epochs with SSPS
# in the third (train.py continues the baseline's epoch-1 checkpoint: the
# earliest ssps_start_epoch with --continue_from is 3), 2 stage-two epochs.
TINY_CORPUS = FAKE_CORPUS + ",min-duration=0.8,max-duration=1.2"
TINY_MODEL = "--channels=[16,16,16,16,48] --emb_dim=32 --batch_size=4"
TINY_SSL = (
    f"{TINY_MODEL} --global_crop_seconds=0.5 --ref_crop_seconds=0.6 "
    "--number_of_epochs=3 --schedule_epochs=3 --ssps_start_epoch=3 "
    "--valid_every=0 --write_curves=False --num_workers=0"
)
TINY_PL = (
    "--batch_size=4 --sentence_len=0.5 --number_of_epochs=2 --step_size=3 "
    "--write_curves=False"
)


@pytest.fixture
def warm_runner():
    """Recipe scripts forked from a warm interpreter (tests/recipes).

    Importing torch and SpeechBrain is most of a tiny run's time; the
    other commands (corpus generation) run as subprocesses. Without
    ``os.fork``, every command is a subprocess (slower).
    """
    if not hasattr(os, "fork"):
        yield bench.quality.run
        return
    sys.path.insert(0, os.path.join(REPO, "tests", "recipes"))
    try:
        from row_runner import WarmRunner
    finally:
        sys.path.pop(0)
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    server = WarmRunner(env)
    count = [0]

    def run(cmd, cwd, log):
        if not cmd[1].endswith(".py"):
            return bench.quality.run(cmd, cwd, log)
        count[0] += 1
        log = f"{log}.{count[0]}"
        start = time.time()
        if server.run(cmd, cwd, env, log):
            with open(log, encoding="utf-8") as fin:
                raise RuntimeError(f"{cmd[1]} failed:\n{fin.read()[-3000:]}")
        return time.time() - start

    yield run
    server.close()


def test_tiny_benchmark_end_to_end(tmp_path, warm_runner):
    out = tmp_path / "bench" / "results.json"
    bench.main(
        [
            f"--out={out}",
            f"--corpus-params={TINY_CORPUS}",
            "--seeds=1",
            "--num-clusters=4",
            "--num-speakers=3",
            f"--ssl-args={TINY_SSL}",
            f"--pl-args={TINY_PL}",
        ],
        runner=warm_runner,
    )
    report = json.loads(out.read_text())
    assert list(report["summary"]) == list(bench.ROWS)
    for row, summary in report["summary"].items():
        assert math.isfinite(summary["eer_mean"]), row
        assert 0.0 <= summary["eer_mean"] <= 100.0, row
    for row in ("pl_iter1_ssps", "pl_iter2_baseline"):
        assert 0.0 <= report["summary"][row]["video_dominated_share_mean"] <= 1
    assert report["setup"]["augmentation"]["seed"] == 7919
    table = (tmp_path / "bench" / "results.md").read_text()
    for row in bench.ROWS:
        assert f"| {row} |" in table
