"""Helper of the embed / threshold tests: a tiny trained and exported run."""

import os

from recipe_helpers import run_script, tiny_args

YAML = "simclr.yaml"


def train_and_export(corpus, out, epochs=2):
    """Trains ``epochs`` tiny SimCLR epochs on MiniVox and exports the last.

    Returns the training output folder and its ``export`` folder.
    """
    out = str(out)
    args = [f"--data_folder={corpus}", f"--output_folder={out}"]
    args += tiny_args(YAML) + [f"--number_of_epochs={epochs}"]
    run_script(["train.py", f"hparams/{YAML}", *args])
    run_script(["export.py", out])
    return out, os.path.join(out, "export")
