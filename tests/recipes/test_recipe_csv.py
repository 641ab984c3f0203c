"""Every row of ``tests/recipes/VoxCeleb.csv``, run as SpeechBrain runs it.

The CSV is in the format of SpeechBrain's ``tests/recipes/<Dataset>.csv``
(columns :data:`COLUMNS`): one row per training yaml of the recipe, whose
``test_debug_flags`` run it with SpeechBrain's ``--debug`` (2 epochs x 2
batches, ``--debug_persistently`` so the checkpoints stay in the output
folder) on a tiny MiniVox, with sizes shrunk so that the paper yamls
(ECAPA C = 1024, batches of 128-256) run on a CPU.

Placeholders in ``test_debug_flags`` (shell variables, so SpeechBrain's
runner, which runs each row through a shell, expands them from the
environment; this test substitutes them):

* ``$MINIVOX_DATA``: a MiniVox corpus root (``python -m
  speechbrain_ssps.minivox --out DIR --speakers 4 --videos 2 --utterances 3
  --test-speakers 2``; here the session's ``corpus`` fixture);
* ``$MINIVOX_PREP``: ``voxceleb_prepare.py``'s output for that corpus
  (``train.csv`` with speaker labels, for ``train_pl.py``; ``test.csv`` and
  ``trials_O.txt``, for ``verify.py``), written once per session;
* ``$MINIVOX_EXPORT``: an ``export.py`` folder of a debug run of
  ``minivox_simclr.yaml`` on that corpus (for ``verify.py``), made once per
  session.

Each row runs from the repository root as ``python <Script_file>
<Hparam_file> <test_debug_flags> --device=cpu --output_folder=<tmp>``, as in
SpeechBrain's ``tests/utils/recipe_tests.py``. ``test_debug_checks`` holds
SpeechBrain's ``file_exists=[...]`` (paths under the output folder) and
``performance_check=[file, variable, threshold, epoch: N]`` (SpeechBrain
checks the first one only; every one is checked here), plus
``checkpoint_files=[...]``: files that must be in the newest
``save/CKPT+*`` folder (a checkpoint's name holds its time; SpeechBrain's
runner ignores this key).

A row's process is forked from a warm interpreter that has already imported
torch and SpeechBrain (``row_runner.py``: the imports are most of a debug
row's time); ``RECIPE_ROWS_FRESH=1`` runs each row as a fresh ``python``
subprocess instead, exactly as SpeechBrain's runner does.
"""

import csv
import os
import re
import shlex
import subprocess
import sys
import time

import pytest
from recipe_helpers import RECIPE

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CSV_PATH = os.path.join(ROOT, "tests", "recipes", "VoxCeleb.csv")
COLUMNS = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]
PLACEHOLDERS = ("$MINIVOX_DATA", "$MINIVOX_PREP", "$MINIVOX_EXPORT")
# The training scripts: their rows run SpeechBrain's --debug.
TRAINING = ("train.py", "train_pl.py")
# SpeechBrain's value pattern of a ``key: value`` log item.
_VALUE = r"\s*:\s*(?P<value>[-+]?\d*\.\d+([eE][-+]?\d+)?)"


def read_rows(path=CSV_PATH):
    """``[(recipe_id, row)]`` with SpeechBrain's ids (``VoxCeleb_row_02``)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        rows = list(reader)
    return [(f"VoxCeleb_row_{i + 2:02d}", row) for i, row in enumerate(rows)]


ROWS = read_rows()


def substitute(flags, values):
    """``flags`` with each placeholder replaced by its value."""
    for name, value in values.items():
        flags = flags.replace(name, value)
    left = re.findall(r"\$\w+", flags)
    assert not left, f"unknown placeholders {left} in {flags!r}"
    return flags


def row_command(row, values, output):
    """The row's command line, as SpeechBrain's runner composes it."""
    flags = shlex.split(substitute(row["test_debug_flags"], values))
    return [
        sys.executable,
        row["Script_file"].strip(),
        row["Hparam_file"].strip(),
        *flags,
        "--device=cpu",
        f"--output_folder={output}",
    ]


def _threshold_holds(threshold, value):
    threshold = threshold.strip()
    for op in ("==", ">=", "<=", ">", "<"):
        if threshold.startswith(op):
            bound = float(threshold[len(op) :])
            return {
                "==": value == bound,
                ">=": value >= bound,
                "<=": value <= bound,
                ">": value > bound,
                "<": value < bound,
            }[op]
    raise ValueError(f"bad threshold {threshold!r}")


def performance_failures(check, output):
    """Failed ``performance_check=[file, variable, threshold, epoch: N]``."""
    failures = []
    for entry in re.findall(r"performance_check=\[(.*?)\]", check):
        filename, variable, threshold, epoch = (
            part.strip() for part in entry.split(",")
        )
        path = os.path.join(output, filename)
        if not os.path.isfile(path):
            failures.append(f"{filename} missing ({entry})")
            continue
        with open(path, encoding="utf-8") as f:
            lines = [ln for ln in f if ln.strip()]
        if epoch.split(":")[-1].strip() == "-1":
            lines = lines[-1:]
        else:
            lines = [ln for ln in lines if ln.startswith(epoch + ",")]
        match = lines and re.search(re.escape(variable) + _VALUE, lines[0])
        if not match:
            failures.append(f"no {variable!r} at {epoch!r} in {filename}")
        elif not _threshold_holds(threshold, float(match.group("value"))):
            failures.append(f"{variable} = {match.group('value')} {entry}")
    return failures


def check_failures(check, output):
    """Every failed check of a ``test_debug_checks`` string."""
    failures = []
    found = re.search(r"file_exists=\[(.*?)\]", check)
    for name in found.group(1).split(",") if found else []:
        if not os.path.exists(os.path.join(output, name.strip())):
            failures.append(f"missing {name.strip()}")
    failures += performance_failures(check, output)
    found = re.search(r"checkpoint_files=\[(.*?)\]", check)
    if found:
        save = os.path.join(output, "save")
        ckpts = sorted(
            d for d in os.listdir(save) if d.startswith("CKPT+")
        ) if os.path.isdir(save) else []  # fmt: skip
        if not ckpts:
            failures.append("no save/CKPT+* checkpoint")
        for name in found.group(1).split(",") if ckpts else []:
            if not os.path.isfile(os.path.join(save, ckpts[-1], name.strip())):
                failures.append(f"missing {ckpts[-1]}/{name.strip()}")
    return failures


@pytest.fixture(scope="session")
def run_row():
    """``run(argv, cwd, env, log) -> exit status``: warm fork or subprocess."""
    fresh = os.environ.get("RECIPE_ROWS_FRESH") == "1" or not hasattr(
        os, "fork"
    )
    if fresh:

        def run(argv, cwd, env, log):
            with open(log, "w", encoding="utf-8") as out:
                done = subprocess.run(
                    argv, cwd=cwd, env=env, stdout=out, stderr=out
                )
            return done.returncode

        yield run
        return
    from row_runner import WarmRunner

    runner = WarmRunner(dict(os.environ, OMP_NUM_THREADS="1"))
    yield runner.run
    runner.close()


def _environment(script):
    """A row's environment: offline, one thread, PYTHONPATH as SpeechBrain."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    script_dir = os.path.join(ROOT, os.path.dirname(script))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (script_dir, env.get("PYTHONPATH")) if p
    )
    return env


@pytest.fixture(scope="session")
def minivox_prep(corpus, tmp_path_factory):
    """``voxceleb_prepare.py``'s manifests of the session corpus, once."""
    sys.path.insert(0, RECIPE)
    try:
        from voxceleb_prepare import prepare_voxceleb
    finally:
        sys.path.remove(RECIPE)
    folder = str(tmp_path_factory.mktemp("minivox_prep"))
    prepare_voxceleb(corpus, folder, num_workers=1)
    return folder


@pytest.fixture(scope="session")
def minivox_export(corpus, run_row, tmp_path_factory):
    """An ``export.py`` folder of a tiny debug run (verify.py's input)."""
    folder = tmp_path_factory.mktemp("minivox_export")
    run = str(folder / "run")
    log = str(folder / "stdout.txt")
    train = f"{RECIPE}/train.py"
    tiny = "--channels=[16,16,16,16,48] --emb_dim=32 --batch_size=4"
    argv = [sys.executable, train, f"{RECIPE}/hparams/minivox_simclr.yaml"]
    argv += shlex.split(f"--data_folder={corpus} --debug --debug_persistently")
    argv += shlex.split(f"{tiny} --global_crop_seconds=0.5 --num_workers=0")
    argv += ["--noprogressbar", "--valid_every=0", f"--output_folder={run}"]
    assert run_row(argv, ROOT, _environment(train), log) == 0, open(log).read()
    argv = [sys.executable, f"{RECIPE}/export.py", run]
    assert run_row(argv, ROOT, _environment(train), log) == 0, open(log).read()
    return os.path.join(run, "export")


@pytest.mark.parametrize(
    "recipe_id, row",
    ROWS,
    ids=[os.path.basename(row["Hparam_file"]) for _, row in ROWS],
)
def test_recipe_row(
    recipe_id, row, corpus, minivox_prep, run_row, tmp_path, request
):
    output = str(tmp_path / recipe_id)
    values = {"$MINIVOX_DATA": corpus, "$MINIVOX_PREP": minivox_prep}
    if "$MINIVOX_EXPORT" in row["test_debug_flags"]:  # made only if needed
        values["$MINIVOX_EXPORT"] = request.getfixturevalue("minivox_export")
    env = _environment(row["Script_file"])
    log_path = str(tmp_path / "stdout.txt")
    start = time.perf_counter()
    returncode = run_row(row_command(row, values, output), ROOT, env, log_path)
    seconds = time.perf_counter() - start
    print(f"{recipe_id} {row['Hparam_file']}: {seconds:.1f} s")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        full = f.read()
    log = full[-6000:]
    assert returncode == 0, log
    if row["Script_file"].endswith("/train.py"):  # its one --debug line
        assert "--debug (2 epochs x 2 batches): " in full, log
    failures = check_failures(row["test_debug_checks"], output)
    assert not failures, f"{recipe_id}: {failures}\n{log}"


def test_csv_format():
    with open(CSV_PATH, newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == COLUMNS
    for recipe_id, row in ROWS:
        assert None not in row and None not in row.values(), recipe_id
        for column in ("Script_file", "Hparam_file", "Data_prep_file"):
            assert os.path.isfile(os.path.join(ROOT, row[column])), row[column]
        assert os.path.isfile(os.path.join(ROOT, row["Readme_file"]))
        flags = row["test_debug_flags"]
        assert set(re.findall(r"\$\w+", flags)) <= set(PLACEHOLDERS)
        checks = row["test_debug_checks"]
        assert "file_exists=[" in checks, recipe_id
        if os.path.basename(row["Script_file"]) in TRAINING:
            assert "--debug " in flags + " " and "--debug_persistently" in flags
            assert "train_log.txt" in checks and "checkpoint_files=[" in checks
        if row["performance"]:
            assert "paper target" in row["performance"], recipe_id


def test_every_yaml_has_a_row():
    hparams = os.path.join(RECIPE, "hparams")
    yamls = {f for f in os.listdir(hparams) if f.endswith(".yaml")}
    rows = [os.path.basename(r["Hparam_file"]) for _, r in ROWS]
    assert len(rows) == len(set(rows)), "a yaml has two rows"
    missing = sorted(yamls - set(rows))
    assert not missing, f"hparams without a row in {CSV_PATH}: {missing}"
    assert set(rows) <= yamls


def test_checks_parse_like_speechbrain(tmp_path):
    """The checker on a fabricated output folder (no training)."""
    (tmp_path / "save" / "CKPT+2026-01-01+00-00-00+00").mkdir(parents=True)
    (tmp_path / "save" / "CKPT+2026-01-01+00-00-01+00").mkdir()
    (tmp_path / "save" / "CKPT+2026-01-01+00-00-01+00" / "a.ckpt").touch()
    (tmp_path / "train_log.txt").write_text(
        "epoch: 1, lr: 1.0e-01 - train loss: 5.0, train coverage: 0.0\n"
        "epoch: 2, lr: 1.0e-01 - train loss: nan, train coverage: 2.5e-01\n"
    )
    good = (
        "file_exists=[train_log.txt] checkpoint_files=[a.ckpt] "
        "performance_check=[train_log.txt, train coverage, >0, epoch: 2]"
    )
    assert check_failures(good, str(tmp_path)) == []
    bad = (
        "file_exists=[log.txt] checkpoint_files=[b.ckpt] "
        "performance_check=[train_log.txt, train loss, <10, epoch: 2] "
        "performance_check=[train_log.txt, train coverage, >0, epoch: 1]"
    )
    assert len(check_failures(bad, str(tmp_path))) == 4  # nan is no value
