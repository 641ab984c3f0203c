#!/usr/bin/env python3
"""Self-supervised speaker embeddings with DINO or SimCLR, with or without
SSPS (Self-Supervised Positive Sampling), on VoxCeleb.

The algorithm lives in the ``speechbrain_ssps`` package; this script wires
data preparation, the data pipeline and ``SSLBrain``.

To run (single process)::

    python train.py hparams/dino_ssps.yaml --data_folder=/data/voxceleb2

Several GPUs (the batch size is per process)::

    torchrun --standalone --nproc_per_node=4 train.py \
        hparams/dino_ssps.yaml --data_folder=/data/voxceleb2 --batch_size=32

Supported yamls: ``dino.yaml``, ``dino_ssps.yaml``, ``simclr.yaml``,
``simclr_ssps.yaml`` (paper settings) and ``minivox_*.yaml`` (the embedded
synthetic corpus). An interrupted run resumes from its last checkpoint when
the same command is run again.

``--debug`` (SpeechBrain's 2 batches x 2 epochs) runs every path of every
yaml: SSPS, SwAV's queue and validation start in the last debug epoch, K
fits the rows the debug batches fill, and one log line says what changed
(``speechbrain_ssps/debug_run.py``); ``tests/recipes/VoxCeleb.csv`` runs
each yaml so on a tiny MiniVox.

Authors
 * speechbrain-ssps contributors
"""

import os
import shutil
import sys
from functools import partial
from types import SimpleNamespace

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_ssps import debug_run
from speechbrain_ssps.brain import SSLBrain
from speechbrain_ssps.crops import make_ssl_views_pipeline, ssl_view_keys
from speechbrain_ssps.dev_split import (
    DEV_LIST,
    missing_dev_message,
    validation_files,
)
from speechbrain_ssps.epoch_validation import EpochValidator
from speechbrain_ssps.frameworks import resolve_framework
from speechbrain_ssps.preflight import (
    check_manifest,
    check_run_precision,
    check_training_options,
)
from speechbrain_ssps.queue_filling import last_plain_epoch
from speechbrain_ssps.ssps import SSPSOptionError, label_oracle

logger = get_logger(__name__)

# SSPS's constructor arguments -> this recipe's command-line options.
SSPS_OPTION_NAMES = {
    "num_utterances": "the training manifest's row count",
    "repr_dim": "--emb_dim",
    "pos_dim": "--ssps_pos_dim",
    "pos_views": "--num_global_views",
    "seed": "--seed",
}


def dataio_prep(hparams):
    """The training set (utterance index, SSL views, reference crop).

    Row order of the training manifest defines the utterance index used by
    SSPS's queues.

    Returns
    -------
    train_data : DynamicItemDataset
    views : the seeded crop pipeline (``SSLBrain`` sets its epoch)
    """
    train_data = sb.dataio.dataset.DynamicItemDataset.from_csv(
        csv_path=hparams["train_annotation"],
        replacements={"data_root": hparams["data_folder"]},
    )
    index_of = {uid: i for i, uid in enumerate(train_data.data_ids)}

    @sb.utils.data_pipeline.takes("id")
    @sb.utils.data_pipeline.provides("index")
    def index_pipeline(uid):
        return index_of[uid]

    sr = hparams["sample_rate"]
    with_ref = "ssps" in hparams
    views = make_ssl_views_pipeline(
        num_global=hparams["num_global_views"],
        global_samples=int(hparams["global_crop_seconds"] * sr),
        num_local=hparams["num_local_views"],
        local_samples=int(hparams["local_crop_seconds"] * sr)
        if hparams["num_local_views"]
        else None,
        reference_samples=int(hparams["ref_crop_seconds"] * sr)
        if with_ref
        else None,
        seed=hparams["seed"],  # crops = f(seed, epoch, utterance): resumable
    )
    sb.dataio.dataset.add_dynamic_item([train_data], index_pipeline)
    sb.dataio.dataset.add_dynamic_item([train_data], views)
    keys = ssl_view_keys(
        hparams["num_global_views"], hparams["num_local_views"], with_ref
    )
    sb.dataio.dataset.set_output_keys([train_data], ["id", "index", *keys])
    return train_data, views


def make_validator(hparams):
    """The end-of-epoch verification pass, or None.

    ``valid_every`` (default 1; 0 = off) epochs, on ``valid_trials``
    (default ``O``: ``<save_folder>/trials_O.txt`` with ``test.csv``; for
    monitoring only, see the README; ``dev``: the dev split of
    ``--dev_speakers``, ``dev_trials.txt`` with ``dev.csv``, which may
    select checkpoints), ``valid_segment_seconds`` (4 s) per utterance.
    Without that trial list (data without one) it is off.
    """
    every = int(hparams.get("valid_every", 1))
    name = str(hparams.get("valid_trials", "O"))
    trials, manifest = validation_files(hparams["save_folder"], name)
    if every == 0:
        return None
    if not os.path.isfile(trials):
        if name == DEV_LIST:
            raise ValueError(missing_dev_message(trials))
        if name != "O":  # a list the user asked for
            raise ValueError(f"--valid_trials={name}: no {trials}")
        logger.warning("No %s: no validation during training", trials)
        return None
    return EpochValidator(
        trials,
        manifest,
        trials_name=name,
        every=every,
        segment_seconds=float(hparams.get("valid_segment_seconds", 4.0)),
        sample_rate=int(hparams["sample_rate"]),
        batch_size=int(hparams.get("valid_batch_size", 32)),
    )


def check_inputs(hparams, hparams_file):
    """The manifest, every audio header, and the run's options.

    Files shorter than the longest crop are counted (their crops wrap).
    """
    crops = [hparams["global_crop_seconds"]]
    if hparams["num_local_views"]:
        crops.append(hparams["local_crop_seconds"])
    if "ssps" in hparams:
        crops.append(hparams["ref_crop_seconds"])
    run_on_main(
        check_manifest,
        kwargs={
            "csv_path": hparams["train_annotation"],
            "sample_rate": hparams["sample_rate"],
            "min_samples": int(max(crops) * hparams["sample_rate"]),
            "replacements": {"data_root": hparams["data_folder"]},
        },
    )
    if "ssps" not in hparams and hparams.get("ssps_start_epoch") is not None:
        logger.warning(
            f"ssps_start_epoch={hparams['ssps_start_epoch']} is ignored: "
            f"{hparams_file} trains without SSPS (use a *_ssps.yaml)"
        )


def ssps_positive_dim(hparams):
    """SSPS's ``pos_dim``: what the framework's positives are.

    It follows from the framework (for DINO, from ``dino_queue``); an
    explicit ``--ssps_pos_dim`` must agree with it.
    """
    framework = resolve_framework(
        hparams["framework"], SimpleNamespace(**hparams)
    )
    derived = framework.positive_dim(hparams["modules"])
    explicit = hparams.get("ssps_pos_dim")
    if explicit is not None and explicit != derived:
        raise ValueError(
            f"--ssps_pos_dim={explicit} contradicts the framework "
            f"{framework!r}, whose positives are {derived}-d; drop "
            "--ssps_pos_dim (it follows from --dino_queue)"
        )
    return derived


def make_ssps(hparams, train_data, sizes=None):
    """SSPS for this training set (or the label oracle), checked.

    With ``ssps_oracle: True`` the positives are drawn with the manifest's
    labels instead (same speaker, another video: the paper's upper bound).
    An invalid SSPS option is reported under its command-line name.
    ``sizes`` replaces SSPS arguments (``--debug``: :func:`debug_ssps_sizes`).
    """
    data, ids = train_data.data, train_data.data_ids
    labelled = all(
        data[i].get("spk_id") and data[i].get("video_id") for i in ids
    )
    oracle = hparams.get("ssps_oracle", False)
    if oracle and not labelled:
        raise ValueError(
            "ssps_oracle needs spk_id and video_id in every row of "
            f"{hparams['train_annotation']}"
        )
    if hparams.get("ssps_mask_false_negatives") and (
        hparams.get("ssps_sampling") == "knn"
    ):
        raise ValueError(
            "--ssps_mask_false_negatives needs SSPS's clusters; "
            "--ssps_sampling=knn has none"
        )
    factory = partial(
        hparams["ssps"], pos_dim=ssps_positive_dim(hparams), **(sizes or {})
    )
    try:
        if not labelled:
            return factory(num_utterances=len(ids))
        speakers = [data[i]["spk_id"] for i in ids]
        videos = [data[i]["video_id"] for i in ids]
        if oracle:
            return label_oracle(factory, speakers, videos)
        ssps = factory(num_utterances=len(ids))
    except SSPSOptionError as err:
        option = SSPS_OPTION_NAMES.get(err.option, f"--ssps_{err.option}")
        raise ValueError(f"{option}={err.value!r}: {err}") from err
    ssps.set_labels(speakers, videos)
    return ssps


def seed_from_plain_run(hparams):
    """Copies a plain run's checkpoint to continue it with SSPS.

    With ``continue_from`` set to the save folder of a plain DINO/SimCLR run
    and no checkpoint of our own yet, the latest checkpoint of that run up to
    epoch ``ssps_start_epoch - 2`` is copied, so that epoch
    ``ssps_start_epoch - 1`` fills the queues as in a one-go run. With
    ``ssps_fill: pass`` that epoch is a plain epoch (the queues are filled
    by the pass at the start of ``ssps_start_epoch``), so checkpoints up to
    ``ssps_start_epoch - 1`` qualify: SSPS starts from the plain run's own
    model of that epoch, one epoch fewer to train.
    """
    source = hparams.get("continue_from")
    if not source or hparams["checkpointer"].list_checkpoints():
        return
    from speechbrain.utils.checkpoints import Checkpointer

    start = hparams["ssps_start_epoch"]
    fill = hparams.get("ssps_fill") or "epoch"  # as SSLBrain reads it
    last_plain = last_plain_epoch(start, fill)
    found = Checkpointer(source).list_checkpoints()
    found = [c for c in found if int(c.meta.get("epoch", -1)) <= last_plain]
    if not found:
        raise ValueError(
            f"continue_from={source!r} holds no checkpoint of an epoch <= "
            f"{last_plain} (ssps_start_epoch - {start - last_plain})"
        )
    best = max(found, key=lambda c: (int(c.meta["epoch"]), c.meta["unixtime"]))
    target = os.path.join(hparams["save_folder"], os.path.basename(best.path))
    shutil.copytree(best.path, target)
    logger.info(f"Continuing {best.path} (epoch {best.meta['epoch']})")


def debug_epoch_overrides(hparams_file, run_opts, overrides):
    """``--debug``: the epoch options moved into the debug epochs.

    See :mod:`speechbrain_ssps.debug_run`. Returns the overrides to load
    the yaml with, the changes ``{option: (old, new)}`` and notes on what
    the debug run cannot run.
    """
    epochs = int(run_opts.get("debug_epochs", 2))
    values = debug_run.read_top_level(
        hparams_file, overrides, debug_run.EPOCH_OPTIONS
    )
    changes = debug_run.debug_epoch_changes(values, epochs, values["ssps"])
    note = debug_run.ssps_skipped_note(values, epochs)
    if changes:
        new = {key: value for key, (_, value) in changes.items()}
        overrides = debug_run.merge_overrides(overrides, new)
    return overrides, changes, [note] if note else []


def debug_ssps_sizes(hparams, num_utterances, run_opts):
    """``--debug``: SSPS's K and M that the debug batches' rows can hold.

    Returns ``{ssps_argument: (old, new)}`` (none for the label oracle,
    whose clusters are the speakers).
    """
    if hparams.get("ssps_oracle"):
        return {}
    keywords = hparams["ssps"].keywords
    filled = debug_run.debug_filled_rows(
        num_utterances,
        hparams["dataloader_options"]["batch_size"],
        int(os.environ.get("WORLD_SIZE", "1")),
        int(run_opts.get("debug_batches", 2)),
    )
    return debug_run.debug_ssps_changes(
        keywords["num_clusters"],
        keywords.get("num_neighbors", 1),
        keywords.get("sampling", "ncs"),
        filled,
    )


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    debug = bool(run_opts.get("debug", False))
    debug_changes, debug_notes = {}, []
    if debug:  # SpeechBrain's --debug: every path runs (debug_run.py)
        overrides, debug_changes, debug_notes = debug_epoch_overrides(
            hparams_file, run_opts, overrides
        )
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    check_run_precision(run_opts, hparams)  # before any data preparation

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    # Data preparation and start-up checks
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from augment_prepare import prepare_augmentations  # noqa
    from voxceleb_prepare import prepare_voxceleb  # noqa

    run_on_main(
        prepare_voxceleb,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["save_folder"],
            "skip_prep": hparams["skip_prep"],
            "dev_speakers": int(hparams.get("dev_speakers", 0)),
        },
    )
    check_inputs(hparams, hparams_file)
    augmentations = prepare_augmentations(hparams)
    train_data, views = dataio_prep(hparams)
    check_training_options(
        num_utterances=len(train_data),
        batch_size=hparams["dataloader_options"]["batch_size"],
        number_of_epochs=hparams["number_of_epochs"],
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        ssps_start_epoch=hparams["ssps_start_epoch"]
        if "ssps" in hparams
        else None,
    )
    modules = dict(hparams["modules"])
    if "ssps" in hparams:
        sizes = {}
        if debug:
            sizes = debug_ssps_sizes(hparams, len(train_data), run_opts)
        new = {key: value for key, (_, value) in sizes.items()}
        modules["ssps"] = make_ssps(hparams, train_data, new)
        debug_changes.update({f"ssps_{k}": v for k, v in sizes.items()})
        run_on_main(seed_from_plain_run, args=[hparams])
    if debug:
        logger.info(
            debug_run.describe_debug(
                run_opts.get("debug_epochs", 2),
                run_opts.get("debug_batches", 2),
                debug_changes,
                debug_notes,
            )
        )

    # Training
    brain = SSLBrain(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        augmentations=augmentations,
        views_pipeline=views,
        validator=make_validator(hparams),
    )
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        train_loader_kwargs=hparams["dataloader_options"],
    )
