"""Helpers of the recipe tests: the recipe folder, tiny overrides, runner."""

import os
import subprocess
import sys

RECIPE = os.path.abspath(
    os.path.join(
        os.path.dirname(__file__), "..", "..", "recipes", "VoxCeleb", "SSPS"
    )
)

# Tiny-model overrides that every recipe yaml accepts.
TINY = [
    "--batch_size=4",
    "--channels=[16,16,16,16,48]",
    "--emb_dim=32",
    "--global_crop_seconds=0.5",
    "--num_workers=0",
    "--noprogressbar",
    # Redrawing curves.png costs more than a tiny epoch; the tests that
    # check the picture turn it back on.
    "--write_curves=False",
]
TINY_DINO = [
    "--local_crop_seconds=0.3",
    "--dino_out_dim=128",
    "--dino_hidden_dim=32",
    "--dino_bottleneck_dim=16",
]
TINY_SSPS = [
    "--ref_crop_seconds=0.6",
    "--ssps_num_clusters=4",
    "--ssps_queue_size=12",
]


def tiny_args(yaml):
    """The tiny overrides for one yaml."""
    args = list(TINY)
    if "dino" in yaml:
        args += TINY_DINO
    if "ssps" in yaml:
        args += TINY_SSPS
    return args


def run_script(args, cwd=RECIPE, env=None, check=True, launcher=None):
    """Runs a recipe script in a subprocess (offline, one thread)."""
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    full_env.update(env or {})
    cmd = (launcher or [sys.executable]) + list(args)
    result = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True
    )
    if check:
        assert result.returncode == 0, (
            result.stdout[-3000:] + result.stderr[-3000:]
        )
    return result


def verify_export(export, prep_folder, output_folder):
    """Runs verify.py on an export; returns its ``results.json``."""
    import json

    run_script(
        [
            "verify.py",
            "hparams/verification.yaml",
            f"--export_folder={export}",
            f"--prep_folder={prep_folder}",
            f"--output_folder={output_folder}",
            "--device=cpu",
        ]
    )
    with open(os.path.join(output_folder, "results.json")) as f:
        return json.load(f)


def load_offline(export):
    """The export behind SpeechBrain's ``SpeakerRecognition``, no network."""
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig

    return SpeakerRecognition.from_hparams(
        source=export,
        savedir=None,
        fetch_config=FetchConfig(allow_network=False),
        run_opts={"device": "cpu"},
    )
