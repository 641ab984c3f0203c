#!/usr/bin/env python3
"""Stage two: supervised ECAPA-TDNN on pseudo speaker labels.

Trains SpeechBrain's ``ECAPA_TDNN`` with its ``Classifier`` and the
additive angular margin softmax (AAM, margin 0.2, scale 30) on a manifest
whose ``spk_id`` holds pseudo labels written by ``pseudo_label.py`` (or
true labels, for the supervised upper bound). Random fixed-length chunks
of each utterance, optional MUSAN noise / RIR reverberation (one seeded
choice per batch, as in ``train.py``), and optionally an encoder
initialised from an SSL export (``--init_from``).

To run::

    python train_pl.py hparams/pl_ecapa.yaml \\
        --data_folder=/data/voxceleb2 \\
        --train_csv=results/pl/iter1/train_pl.csv \\
        --output_folder=results/pl/iter1/ecapa \\
        --init_from=results/dino_ssps/1986/export

The output folder is a training folder like ``train.py``'s
(``hyperparams.yaml``, ``save/CKPT+*`` with ``embedding_model``), so
``export.py`` and ``verify.py`` work on it unchanged; its export can be fed
back to ``pseudo_label.py`` for another iteration. Supported yamls:
``pl_ecapa.yaml`` (SpeechBrain's VoxCeleb ECAPA settings) and
``minivox_pl_ecapa.yaml``.

Authors
 * speechbrain-ssps contributors
"""

import os
import random
import sys

import soundfile as sf
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.logger import get_logger

from speechbrain_ssps.checkpoints import ENCODER_CKPT, check_state_dict
from speechbrain_ssps.curves import write_training_curves
from speechbrain_ssps.view_augmentation import ViewAugmenter

logger = get_logger(__name__)


class PseudoLabelBrain(sb.Brain):
    """ECAPA-TDNN + AAM-softmax classifier on (pseudo) speaker labels."""

    def __init__(self, *args, augmentations=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augment = ViewAugmenter(
            augmentations or [],
            seed=self.hparams.seed,
            prob=getattr(self.hparams, "augment_prob", 1.0),
        )
        self._epoch = 0

    def compute_forward(self, batch, stage):
        """Waveforms -> (augmentation) -> Fbank -> norm -> ECAPA -> AAM."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and self.augment:
            wavs = self.augment(wavs, self._epoch, self.step, 0)
        feats = self.modules.compute_features(wavs)
        feats = self.modules.mean_var_norm(feats, lens)
        embeddings = self.modules.embedding_model(feats, lens)
        return self.modules.classifier(embeddings), lens

    def compute_objectives(self, predictions, batch, stage):
        """AAM-softmax loss; per-batch LR schedule; running accuracy."""
        predictions, lens = predictions
        spkid, _ = batch.spk_id_encoded
        loss = self.hparams.compute_cost(predictions, spkid, lens)
        if stage == sb.Stage.TRAIN:
            self.hparams.lr_annealing.on_batch_end(self.optimizer)
        with torch.no_grad():
            guess = predictions.squeeze(1).argmax(dim=-1)
            self._correct += int((guess == spkid.view(-1)).sum())
            self._total += int(spkid.numel())
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Resets the accuracy counters."""
        self._epoch = epoch or 0
        self._correct, self._total = 0, 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the epoch, saves a checkpoint, redraws ``curves.png``."""
        if stage != sb.Stage.TRAIN:
            return
        error = 1.0 - self._correct / max(self._total, 1)
        lr = self.optimizer.param_groups[0]["lr"]
        self.hparams.train_logger.log_stats(
            stats_meta={"epoch": epoch, "lr": lr},
            train_stats={"loss": stage_loss, "error_rate": error},
        )
        self.checkpointer.save_and_keep_only(
            meta={"epoch": int(epoch), "loss": float(stage_loss)},
            end_of_epoch=True,
            num_to_keep=int(self.hparams.keep_checkpoints),
        )
        if sb.utils.distributed.if_main_process():
            write_training_curves(self.hparams)  # <output_folder>/curves.png


def read_chunk(path, chunk, rng):
    """A random ``chunk``-sample span of a file (short files are tiled)."""
    frames = sf.info(path).frames
    start = rng.randint(0, frames - chunk) if frames > chunk else 0
    audio, _ = sf.read(
        path,
        start=start,
        stop=min(frames, start + chunk),
        dtype="float32",
        always_2d=True,
    )
    sig = torch.from_numpy(audio).mean(dim=1)
    if len(sig) < chunk:
        sig = sig.repeat(chunk // max(len(sig), 1) + 1)[:chunk]
    return sig


def dataio_prep(hparams):
    """Training set (random chunks) and the label encoder.

    Every row must have a ``spk_id`` (the pseudo label); a manifest
    without labels is refused with the file named.
    """
    csv_path = hparams["train_csv"]
    if not os.path.isfile(csv_path):
        raise ValueError(f"--train_csv: manifest not found: {csv_path}")
    train = sb.dataio.dataset.DynamicItemDataset.from_csv(
        csv_path=csv_path, replacements={"data_root": hparams["data_folder"]}
    )
    if len(train) == 0:
        raise ValueError(f"--train_csv {csv_path} has no data rows")
    unlabelled = [
        uid for uid in train.data_ids if not train.data[uid].get("spk_id")
    ]
    if unlabelled:
        raise ValueError(
            f"--train_csv {csv_path} has no spk_id for {len(unlabelled)} "
            f"row(s) (e.g. {unlabelled[0]!r}); train_pl.py needs labels: "
            "run pseudo_label.py and pass its train_pl.csv"
        )
    chunk = int(hparams["sentence_len"] * hparams["sample_rate"])
    rng = random.Random(hparams["seed"])

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_chunk(wav, chunk, rng)

    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("spk_id")
    @sb.utils.data_pipeline.provides("spk_id_encoded")
    def label_pipeline(spk_id):
        return torch.LongTensor([label_encoder.encode_label(spk_id)])

    sb.dataio.dataset.add_dynamic_item([train], audio_pipeline)
    sb.dataio.dataset.add_dynamic_item([train], label_pipeline)
    os.makedirs(hparams["save_folder"], exist_ok=True)
    label_encoder.load_or_create(
        path=os.path.join(hparams["save_folder"], "label_encoder.txt"),
        from_didatasets=[train],
        output_key="spk_id",
    )
    label_encoder.expect_len(
        len(set(train.data[u]["spk_id"] for u in train.data_ids))
    )
    sb.dataio.dataset.set_output_keys([train], ["id", "sig", "spk_id_encoded"])
    return train, label_encoder


def init_encoder(hparams):
    """Loads ``init_from``'s exported encoder into ``embedding_model``.

    Returns the checkpoint loaded (None without ``init_from``); the caller
    logs it once the experiment folder, and so logging, is set up.
    """
    folder = hparams.get("init_from")
    if not folder:
        return None
    path = os.path.join(folder, f"{ENCODER_CKPT}.ckpt")
    if not os.path.isfile(path):
        raise ValueError(
            f"--init_from {folder} has no {ENCODER_CKPT}.ckpt; pass a "
            "folder written by export.py"
        )
    state = torch.load(path, map_location="cpu")
    model = hparams["embedding_model"]
    check_state_dict(model, state, f"--init_from {path}")
    model.load_state_dict(state, strict=True)
    return path


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    try:
        train_data, label_encoder = dataio_prep(hparams)
        init_path = init_encoder(hparams)
    except ValueError as error:
        sys.exit(f"train_pl.py: error: {error}")
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    if init_path:
        logger.info(f"Encoder initialised from {init_path}")

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from augment_prepare import prepare_augmentations  # noqa: E402

    augmentations = prepare_augmentations(hparams)

    num_labels = len(label_encoder)
    logger.info(f"{len(train_data)} utterances, {num_labels} speakers")
    classifier = hparams["classifier"](out_neurons=num_labels)
    hparams["checkpointer"].add_recoverable("classifier", classifier)
    modules = dict(hparams["modules"], classifier=classifier)
    brain = PseudoLabelBrain(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        augmentations=augmentations,
    )
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        train_loader_kwargs=hparams["dataloader_options"],
    )
