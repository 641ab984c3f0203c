"""Export a trained encoder as an offline SpeechBrain ``SpeakerRecognition``.

A training run (``recipes/VoxCeleb/SSPS/train.py``) leaves its resolved
hyperparameters in ``<output_folder>/hyperparams.yaml`` and SpeechBrain
checkpoints in ``<output_folder>/save/CKPT+*/``. ``export_encoder`` turns
them into a folder holding only

* ``hyperparams.yaml``: the feature extractor, the normaliser and the
  speaker encoder, built with the constructor arguments used in training, the
  ``modules`` that ``speechbrain.inference.speaker.SpeakerRecognition``
  expects (``compute_features``, ``mean_var_norm``, ``embedding_model``), an
  ``audio_normalizer`` at the training sample rate, and a ``pretrainer``
  whose loadables have no ``paths:`` (so they are looked up next to the yaml,
  never on the network);
* ``embedding_model.ckpt``: the encoder's state dict from the most recent
  end-of-epoch checkpoint, or the average of the last N epochs (the SSPS
  paper averages 10);
* ``normalizer.ckpt`` only when the input normalisation keeps statistics
  (``norm_type`` other than ``sentence``).

The training yaml is never instantiated (its DINO head alone can hold
millions of parameters, and it may name data that is not on this machine):
its references are resolved as text with ``hyperpyyaml.resolve_references``
and only the needed entries are read. SpeechBrain's ``Pretrainer`` loads
non-strictly, so the exported state dict is checked here against a freshly
built encoder (same keys and shapes) before anything is written.

Load the result with::

    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig
    model = SpeakerRecognition.from_hparams(
        source=export_folder, savedir=None,
        fetch_config=FetchConfig(allow_network=False),
    )

Authors
-------
* SSPS contributors 2025
"""

import io
import json
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML
from speechbrain.utils.checkpoints import (
    Checkpoint,
    Checkpointer,
    average_checkpoints,
)
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)

ENCODER_CKPT = "embedding_model"
NORMALIZER_CKPT = "normalizer"
# Used when the training yaml lacks the entry (the recipe's choices).
DEFAULT_CLASSES = {
    "compute_features": ("speechbrain.lobes.features.Fbank", {}),
    "mean_var_norm": (
        "speechbrain.processing.features.InputNormalization",
        {"norm_type": "sentence", "std_norm": False},
    ),
    "embedding_model": ("speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN", {}),
}
# Constructor arguments tied to top-level keys: (node, argument) -> key.
LINKED_ARGUMENTS = {
    ("compute_features", "n_mels"): "n_mels",
    ("embedding_model", "input_size"): "n_mels",
    ("embedding_model", "channels"): "channels",
    ("embedding_model", "lin_neurons"): "emb_dim",
}


def read_training_hparams(path: str) -> Dict[str, Any]:
    """Reads a HyperPyYAML file without building any of its objects.

    References (``!ref``, ``!copy``, ``!include``) are resolved and
    ``!PLACEHOLDER`` values read as None; tagged nodes (``!new:``,
    ``!name:``...) stay ruamel nodes whose ``.tag.value`` names the tag.

    Arguments
    ---------
    path : str
        The yaml, e.g. ``<output_folder>/hyperparams.yaml``.

    Returns
    -------
    dict
        The top-level mapping (a ruamel ``CommentedMap``).

    Example
    -------
    >>> path = getfixture("tmp_path") / "h.yaml"
    >>> _ = path.write_text(
    ...     "n_mels: 40\\nmodel: !new:torch.nn.Linear\\n"
    ...     "    in_features: !ref <n_mels>\\n    out_features: 2\\n"
    ... )
    >>> tree = read_training_hparams(str(path))
    >>> tree["model"].tag.value, tree["model"]["in_features"]
    ('!new:torch.nn.Linear', 40)
    """
    if not os.path.isfile(path):
        raise ValueError(f"Training hyperparameters not found: {path}")
    with open(path, encoding="utf-8") as fin:
        # Unfilled placeholders (a hand-written yaml) are not needed here.
        stream = io.StringIO(re.sub(r"!PLACEHOLDER\b", "null", fin.read()))
    stream.name = path  # !include paths are relative to the yaml
    try:
        resolved = resolve_references(stream).getvalue()
    except Exception as error:  # ruamel/hyperpyyaml raise many types
        raise ValueError(f"Cannot read {path}: {error}") from error
    tree = YAML().load(resolved)
    if not isinstance(tree, dict):
        raise ValueError(f"{path} is not a yaml mapping")
    return tree


def _plain(value: Any, where: str) -> Any:
    """A ruamel value as plain Python (no tags), or a ValueError."""
    tag = getattr(getattr(value, "tag", None), "value", None)
    if tag is not None and not tag.startswith("tag:yaml.org"):
        raise ValueError(
            f"{where} is {tag} ...; only plain values (numbers, strings, "
            "lists, mappings) can be exported"
        )
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise ValueError(f"{where} has unsupported type {type(value).__name__}")


def _constructor(tree: Dict[str, Any], key: str) -> Tuple[str, Dict]:
    """Class path and plain keyword arguments of a ``!new:`` entry.

    Falls back to ``DEFAULT_CLASSES[key]`` when ``key`` is absent.
    """
    node = tree.get(key)
    if node is None:
        cls, kwargs = DEFAULT_CLASSES[key]
        return cls, dict(kwargs)
    tag = getattr(getattr(node, "tag", None), "value", None) or ""
    if not tag.startswith("!new:") or not isinstance(node, dict):
        raise ValueError(
            f"Training hyperparameter {key!r} must be '!new:<class>' with "
            f"keyword arguments, got tag {tag or None!r}"
        )
    kwargs = {str(k): _plain(v, f"{key}.{k}") for k, v in node.items()}
    return tag[len("!new:") :], kwargs


def _top_level(tree: Dict[str, Any], key: str, given: Any) -> Any:
    """An explicit value, else the training yaml's top-level value."""
    if given is not None:
        return given
    if key in tree:
        return _plain(tree[key], key)
    return None


def _flow(value: Any) -> str:
    """A plain value as yaml flow text (round-trips through ruamel)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    items = (f"{json.dumps(k)}: {_flow(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def _dump(mapping: Dict[str, Any], indent: int = 0) -> str:
    """Block-style yaml of a plain mapping, one line per key."""
    pad = " " * indent
    return "".join(f"{pad}{k}: {_flow(v)}\n" for k, v in mapping.items())


def _section(name: str, cls: str, kwargs: Dict, refs: Dict[str, str]) -> str:
    """One ``name: !new:cls`` entry; ``refs`` arguments become ``!ref``."""
    lines = [f"{name}: !new:{cls}\n"]
    lines += [f"    {arg}: !ref <{key}>\n" for arg, key in refs.items()]
    rest = {k: v for k, v in kwargs.items() if k not in refs}
    return "".join(lines) + _dump(rest, indent=4)


def build_export_yaml(
    tree: Dict[str, Any],
    n_mels: Optional[int] = None,
    channels: Optional[Sequence[int]] = None,
    emb_dim: Optional[int] = None,
    sample_rate: Optional[int] = None,
    header: str = "",
) -> Tuple[str, bool]:
    """Inference hyperparameters for the encoder of a training yaml.

    Arguments
    ---------
    tree : dict
        The training hyperparameters (see ``read_training_hparams``).
    n_mels : int, optional
        Mel bins; default: the training value.
    channels : list of int, optional
        ECAPA-TDNN channels; default: the training value.
    emb_dim : int, optional
        Embedding size (``lin_neurons``); default: the training value.
    sample_rate : int, optional
        Sample rate that audio files are resampled to by
        ``load_audio``/``verify_files``; default: the training
        ``sample_rate``, else 16000.
    header : str
        Comment lines put at the top.

    Returns
    -------
    text : str
        The yaml.
    stateful_norm : bool
        True when the input normalisation has statistics to load
        (``normalizer.ckpt``).

    Example
    -------
    >>> text, stateful = build_export_yaml(
    ...     {"n_mels": 24, "channels": [8, 8, 8, 8, 24], "emb_dim": 16}
    ... )
    >>> hparams = load_hyperpyyaml(text)
    >>> hparams["modules"]["embedding_model"].blocks[0].conv.conv.in_channels
    24
    >>> stateful  # sentence-level normalisation: nothing to load
    False
    """
    given = {"n_mels": n_mels, "channels": channels, "emb_dim": emb_dim}
    classes, kwargs = {}, {}
    for key in DEFAULT_CLASSES:
        classes[key], kwargs[key] = _constructor(tree, key)
    values = {k: _top_level(tree, k, v) for k, v in given.items()}
    # Fill from (or check against) the constructor arguments themselves.
    for (node, arg), key in LINKED_ARGUMENTS.items():
        if given[key] is not None or arg not in kwargs[node]:
            continue
        if values[key] is None:
            values[key] = kwargs[node][arg]
        elif values[key] != kwargs[node][arg]:
            raise ValueError(
                f"Training yaml: {node}.{arg} is {kwargs[node][arg]!r} but "
                f"{key} is {values[key]!r}; pass {key}= explicitly"
            )
    rate = _top_level(tree, "sample_rate", sample_rate) or 16000
    top = {"sample_rate": rate}
    top.update({k: v for k, v in values.items() if v is not None})
    refs = {node: {} for node in DEFAULT_CLASSES}
    for (node, arg), key in LINKED_ARGUMENTS.items():
        if values[key] is not None:
            refs[node][arg] = key
    norm_type = kwargs["mean_var_norm"].get("norm_type", "global")
    stateful_norm = norm_type != "sentence"
    parts = [header, _dump(top), "\n"]
    for node in DEFAULT_CLASSES:
        parts += [_section(node, classes[node], kwargs[node], refs[node])]
        parts += ["\n"]
    loadables = [ENCODER_CKPT] + ([NORMALIZER_CKPT] if stateful_norm else [])
    targets = {
        ENCODER_CKPT: "embedding_model",
        NORMALIZER_CKPT: "mean_var_norm",
    }
    parts += [
        "audio_normalizer: !new:speechbrain.dataio.preprocess.AudioNormalizer\n"
        "    sample_rate: !ref <sample_rate>\n\n"
        "modules:\n"
        "    compute_features: !ref <compute_features>\n"
        "    mean_var_norm: !ref <mean_var_norm>\n"
        "    embedding_model: !ref <embedding_model>\n\n"
        "# No paths: the loadables are <name>.ckpt next to this file.\n"
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
        "    loadables:\n",
        *(f"        {n}: !ref <{targets[n]}>\n" for n in loadables),
    ]
    return "".join(parts), stateful_norm


def find_epoch_checkpoints(save_folder: str) -> List[Checkpoint]:
    """End-of-epoch checkpoints of a run, oldest epoch first.

    Intra-epoch checkpoints are ignored; when several end-of-epoch
    checkpoints carry the same epoch (a resumed run), the newest is kept.

    Arguments
    ---------
    save_folder : str
        The folder holding ``CKPT+*`` directories.

    Returns
    -------
    list of speechbrain.utils.checkpoints.Checkpoint
        Sorted by (epoch, save time); checkpoints without an ``epoch`` in
        their meta sort by save time only, before the others.

    Example
    -------
    >>> folder = str(getfixture("tmp_path"))
    >>> ckpt = Checkpointer(folder, {"m": torch.nn.Linear(1, 1)})
    >>> for epoch in (1, 2):
    ...     _ = ckpt.save_checkpoint(meta={"epoch": epoch}, end_of_epoch=True)
    >>> _ = ckpt.save_checkpoint(meta={"epoch": 3}, end_of_epoch=False)
    >>> [c.meta["epoch"] for c in find_epoch_checkpoints(folder)]
    [1, 2]
    """
    if not os.path.isdir(save_folder):
        raise ValueError(f"Checkpoint folder not found: {save_folder}")
    found = Checkpointer(save_folder).list_checkpoints()
    found = [c for c in found if c.meta.get("end-of-epoch", False)]

    def order(ckpt):
        epoch = ckpt.meta.get("epoch")
        return (epoch is not None, epoch or 0, ckpt.meta["unixtime"])

    newest = {}
    for ckpt in sorted(found, key=order):
        newest[ckpt.meta.get("epoch", ckpt.path)] = ckpt
    return sorted(newest.values(), key=order)


def _load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """A state dict on the CPU."""
    return torch.load(path, map_location="cpu")


def average_encoder(
    checkpoints: Sequence[Checkpoint], name: str = ENCODER_CKPT
) -> Dict[str, torch.Tensor]:
    """Mean of one recoverable's state dict over checkpoints.

    Floating-point tensors are averaged; integer tensors (BatchNorm's
    ``num_batches_tracked``) get the rounded mean in their own dtype.

    Arguments
    ---------
    checkpoints : sequence of Checkpoint
        The checkpoints to average (at least one).
    name : str
        The recoverable (``<name>.ckpt`` in each checkpoint).

    Returns
    -------
    dict
        The averaged state dict (CPU tensors).

    Example
    -------
    >>> folder = str(getfixture("tmp_path"))
    >>> layer = torch.nn.Linear(1, 1, bias=False)
    >>> ckpt = Checkpointer(folder, {"m": layer})
    >>> for w in (1.0, 2.0):
    ...     _ = layer.weight.data.fill_(w)
    ...     _ = ckpt.save_checkpoint(end_of_epoch=True)
    >>> average_encoder(ckpt.list_checkpoints(), "m")["weight"]
    tensor([[1.5000]])
    """
    if not checkpoints:
        raise ValueError("No checkpoint to average")
    for ckpt in checkpoints:
        if name not in ckpt.paramfiles:
            raise ValueError(f"{ckpt.path} has no {name}.ckpt")
    dtypes = {
        k: v.dtype
        for k, v in _load_state_dict(checkpoints[-1].paramfiles[name]).items()
    }
    averaged = average_checkpoints(list(checkpoints), name)
    out = {}
    for key, value in averaged.items():
        dtype = dtypes.get(key, value.dtype)
        if not dtype.is_floating_point and value.is_floating_point():
            value = value.round()
        out[key] = value.to(dtype).contiguous()
    return out


def check_state_dict(
    model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], source: str
) -> None:
    """Raises a ValueError unless state_dict fits model exactly.

    SpeechBrain's ``Pretrainer`` loads non-strictly (a mismatch only logs a
    warning and leaves weights random), so exports are checked here.

    Arguments
    ---------
    model : torch.nn.Module
        A freshly built model.
    state_dict : dict
        The parameters to export.
    source : str
        Where the parameters come from (for the message).

    Example
    -------
    >>> check_state_dict(torch.nn.Linear(2, 1), {"weight": 0}, "x.ckpt")
    Traceback (most recent call last):
     ...
    ValueError: x.ckpt does not match the encoder built from the training \
hyperparameters: missing keys ['bias']
    """
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if not problems:
        shapes = [
            f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
            for k, v in expected.items()
            if tuple(state_dict[k].shape) != tuple(v.shape)
        ]
        if shapes:
            problems.append(f"shape mismatches (ckpt vs model) {_few(shapes)}")
    if problems:
        raise ValueError(
            f"{source} does not match the encoder built from the training "
            f"hyperparameters: {'; '.join(problems)}"
        )


def _few(items: List[str], count: int = 5) -> str:
    """The first few items of a list, and how many more."""
    more = f" and {len(items) - count} more" if len(items) > count else ""
    return f"{items[:count]}{more}"


def export_encoder(
    output_folder: str,
    export_folder: Optional[str] = None,
    average_last: int = 1,
    n_mels: Optional[int] = None,
    channels: Optional[Sequence[int]] = None,
    emb_dim: Optional[int] = None,
    sample_rate: Optional[int] = None,
    recoverable: str = ENCODER_CKPT,
) -> str:
    """Writes an offline ``SpeakerRecognition`` folder for a training run.

    Arguments
    ---------
    output_folder : str
        The training output folder (holds ``hyperparams.yaml`` and
        ``save/CKPT+*``).
    export_folder : str, optional
        Where to write; default ``<output_folder>/export``.
    average_last : int
        Number of most recent end-of-epoch checkpoints whose encoder weights
        are averaged (1: the last one only).
    n_mels : int, optional
        Overrides the training ``n_mels``.
    channels : list of int, optional
        Overrides the training ``channels``.
    emb_dim : int, optional
        Overrides the training ``emb_dim``.
    sample_rate : int, optional
        Overrides the training ``sample_rate`` (default 16000 if absent).
    recoverable : str
        Which checkpointed encoder to export: ``embedding_model`` (the
        student) or e.g. ``teacher_model`` (DINO's EMA teacher).

    Returns
    -------
    str
        The export folder (absolute path).

    Example
    -------
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> out = getfixture("tmp_path")
    >>> _ = (out / "hyperparams.yaml").write_text(
    ...     "n_mels: 24\\nchannels: [8, 8, 8, 8, 24]\\nemb_dim: 16\\n"
    ... )
    >>> model = ECAPA_TDNN(24, channels=[8, 8, 8, 8, 24], lin_neurons=16)
    >>> ckpt = Checkpointer(str(out / "save"), {"embedding_model": model})
    >>> _ = ckpt.save_checkpoint(meta={"epoch": 1}, end_of_epoch=True)
    >>> folder = export_encoder(str(out))
    >>> sorted(os.listdir(folder))
    ['embedding_model.ckpt', 'hyperparams.yaml']
    """
    if int(average_last) < 1:
        raise ValueError(f"average_last must be >= 1, got {average_last}")
    output_folder = os.path.abspath(output_folder)
    tree = read_training_hparams(
        os.path.join(output_folder, "hyperparams.yaml")
    )
    save_folder = os.path.join(output_folder, "save")
    checkpoints = find_epoch_checkpoints(save_folder)
    if len(checkpoints) < average_last:
        raise ValueError(
            f"average_last={average_last} but {save_folder} holds "
            f"{len(checkpoints)} end-of-epoch checkpoint(s)"
        )
    chosen = checkpoints[-int(average_last) :]
    state_dict = average_encoder(chosen, recoverable)
    epochs = [c.meta.get("epoch") for c in chosen]
    header = (
        "# SpeakerRecognition model exported by speechbrain_ssps.export\n"
        f"# from: {output_folder}\n"
        f"# encoder: {recoverable}, epochs {epochs} averaged\n"
        "# checkpoints: "
        + ", ".join(os.path.basename(c.path) for c in chosen)
        + "\n\n"
    )
    text, stateful_norm = build_export_yaml(
        tree, n_mels, channels, emb_dim, sample_rate, header
    )
    hparams = load_hyperpyyaml(text)
    check_state_dict(
        hparams["embedding_model"],
        state_dict,
        f"{recoverable}.ckpt of {os.path.basename(chosen[-1].path)}",
    )
    hparams["embedding_model"].load_state_dict(state_dict, strict=True)
    if stateful_norm and NORMALIZER_CKPT not in chosen[-1].paramfiles:
        raise ValueError(
            "mean_var_norm keeps statistics (norm_type is not 'sentence') "
            f"but {chosen[-1].path} has no {NORMALIZER_CKPT}.ckpt"
        )

    export_folder = os.path.abspath(
        export_folder or os.path.join(output_folder, "export")
    )
    os.makedirs(export_folder, exist_ok=True)
    torch.save(state_dict, os.path.join(export_folder, f"{ENCODER_CKPT}.ckpt"))
    stale = os.path.join(export_folder, f"{NORMALIZER_CKPT}.ckpt")
    if stateful_norm:
        source = chosen[-1].paramfiles[NORMALIZER_CKPT]
        with open(source, "rb") as fin, open(stale, "wb") as fout:
            fout.write(fin.read())
    elif os.path.exists(stale):
        os.remove(stale)
    with open(
        os.path.join(export_folder, "hyperparams.yaml"), "w", encoding="utf-8"
    ) as fout:
        fout.write(text)
    logger.info(
        f"Exported {recoverable} (epochs {epochs}) of {output_folder} to "
        f"{export_folder}"
    )
    return export_folder


def load_exported(export_folder: str, device: str = "cpu"):
    """An exported encoder as SpeechBrain's ``SpeakerRecognition``, offline.

    Arguments
    ---------
    export_folder : str
        A folder written by :func:`export_encoder` (``hyperparams.yaml`` and
        the encoder checkpoint).
    device : str
        Where the model runs, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    speechbrain.inference.speaker.SpeakerRecognition
        The loaded model (nothing is fetched from the network).
    """
    from speechbrain.inference.speaker import SpeakerRecognition
    from speechbrain.utils.fetching import FetchConfig

    export_folder = os.path.abspath(export_folder)
    if not os.path.isfile(os.path.join(export_folder, "hyperparams.yaml")):
        raise ValueError(
            f"export_folder {export_folder} has no hyperparams.yaml "
            "(run export.py first)"
        )
    return SpeakerRecognition.from_hparams(
        source=export_folder,
        savedir=None,
        fetch_config=FetchConfig(allow_network=False),
        run_opts={"device": device},
    )
