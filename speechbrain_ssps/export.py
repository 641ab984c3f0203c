"""Export a trained encoder as an offline SpeechBrain ``SpeakerRecognition``.

A training run (``recipes/VoxCeleb/SSPS/train.py``) leaves its resolved
hyperparameters in ``<output_folder>/hyperparams.yaml`` and SpeechBrain
checkpoints in ``<output_folder>/save/CKPT+*/``. ``export_encoder`` turns
them into a folder holding only

* ``hyperparams.yaml``: the package template
  ``speechbrain_ssps/templates/inference.yaml`` (feature extractor,
  normaliser, speaker encoder, ``audio_normalizer``, the ``modules`` of
  ``speechbrain.inference.speaker.SpeakerRecognition`` and a ``pretrainer``
  whose loadables have no ``paths:``, so nothing is fetched from the
  network) filled with the run's classes, constructor arguments and sample
  rate, each value written by ruamel's safe dumper;
* ``embedding_model.ckpt``: the encoder's state dict from the most recent
  end-of-epoch checkpoint, or the average of the last N epochs (the SSPS
  paper averages 10), or of the N best by dev EER (``selection.json``
  records which: :mod:`speechbrain_ssps.checkpoint_selection`);
* ``normalizer.ckpt`` only when the input normalisation keeps statistics
  (``norm_type`` other than ``sentence``).

The training yaml is never instantiated (its DINO head alone can hold
millions of parameters, and it may name data that is not on this machine):
its references are resolved as text with ``hyperpyyaml.resolve_references``
and only the needed entries are read. SpeechBrain's ``Pretrainer`` loads
non-strictly, so the exported state dict is checked against a freshly built
encoder (same keys and shapes) before anything is written.
:func:`speechbrain_ssps.inference.load_exported` loads the result
(``SpeakerRecognition.from_hparams`` with ``source=export_folder`` and no
network access).

Authors
-------
* SSPS contributors 2025
"""

import importlib.resources
import inspect
import io
import os
import pydoc
import re
import string
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML
from speechbrain.utils.logger import get_logger

from speechbrain_ssps import checkpoint_selection as selection_rules
from speechbrain_ssps.checkpoints import (
    ENCODER_CKPT,
    average_encoder,
    check_state_dict,
    find_epoch_checkpoints,
)

logger = get_logger(__name__)

NORMALIZER_CKPT = "normalizer"
#: The inference hyperparameters, in ``speechbrain_ssps/templates/``.
TEMPLATE = "inference.yaml"
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
# Constructor arguments that the template writes as ``$argument`` values.
TEMPLATE_VALUES = [("mean_var_norm", a) for a in ("norm_type", "std_norm")]


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
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
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
    cls = tag[len("!new:") :]
    dotted = re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", cls)
    if not tag.startswith("!new:") or not dotted or not isinstance(node, dict):
        raise ValueError(
            f"Training hyperparameter {key!r} must be '!new:<class>' with "
            f"keyword arguments, got tag {tag or None!r}"
        )
    kwargs = {str(k): _plain(v, f"{key}.{k}") for k, v in node.items()}
    bad = [arg for arg in kwargs if not arg.isidentifier()]
    if bad:
        raise ValueError(f"{key} has arguments that are not names: {bad}")
    return cls, kwargs


def _top_level(tree: Dict[str, Any], key: str, given: Any) -> Any:
    """An explicit value, else the training yaml's top-level value."""
    value = tree.get(key) if given is None else given
    return None if value is None else _plain(value, key)


def _default_argument(cls: str, arg: str, where: str, hint: str = "") -> Any:
    """The default value of a constructor argument, or a ValueError."""
    target = pydoc.locate(cls)
    if not inspect.isclass(target):
        raise ValueError(f"{where}: there is no class {cls}")
    parameter = inspect.signature(target).parameters.get(arg)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise ValueError(
            f"{where} is not in the training yaml and {cls} has no default "
            f"{arg}{hint}"
        )
    return _plain(parameter.default, where)


def _yaml_value(value: Any) -> str:
    """A plain value as one line of yaml, written by ruamel's safe dumper.

    Example
    -------
    >>> [_yaml_value(v) for v in (16000, [8, 24], "sentence", "!x", False)]
    ['16000', '[8, 24]', 'sentence', "'!x'", 'false']
    """
    dumper = YAML(typ="safe", pure=True)
    dumper.default_flow_style, dumper.width = True, 1 << 30
    stream = io.StringIO()
    dumper.dump([value], stream)  # "[<value>]\n"
    return stream.getvalue().strip()[1:-1]


def _template() -> str:
    """The text of the inference hyperparameters template."""
    folder = importlib.resources.files("speechbrain_ssps") / "templates"
    return (folder / TEMPLATE).read_text(encoding="utf-8")


def build_export_yaml(
    tree: Dict[str, Any],
    n_mels: Optional[int] = None,
    channels: Optional[Sequence[int]] = None,
    emb_dim: Optional[int] = None,
    sample_rate: Optional[int] = None,
    header: str = "",
) -> Tuple[str, bool]:
    """The inference template filled for the encoder of a training yaml.

    Values absent from the training yaml take the constructor's default
    (``n_mels`` that of ``compute_features``).

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
        Comment lines (each starting with ``#``) put after the template's.

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
    if any(s.strip()[:1] not in ("", "#") for s in header.splitlines()):
        raise ValueError(f"header must be yaml comment lines: {header!r}")
    given = {"n_mels": n_mels, "channels": channels, "emb_dim": emb_dim}
    classes, kwargs = {}, {}
    for node in DEFAULT_CLASSES:
        classes[node], kwargs[node] = _constructor(tree, node)
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
    for (node, arg), key in LINKED_ARGUMENTS.items():
        if values[key] is None:  # the first linked constructor's default
            hint = f"; pass {key}= explicitly"
            values[key] = _default_argument(classes[node], arg, key, hint)
    for node, arg in TEMPLATE_VALUES:
        if arg not in kwargs[node]:
            where = f"{node}.{arg}"
            kwargs[node][arg] = _default_argument(classes[node], arg, where)
    stateful_norm = kwargs["mean_var_norm"]["norm_type"] != "sentence"
    rate = _top_level(tree, "sample_rate", sample_rate) or 16000
    fields = {"header": header, "sample_rate": _yaml_value(rate)}
    fields["normalizer_comment"] = "" if stateful_norm else "# "
    fields.update({key: _yaml_value(value) for key, value in values.items()})
    written = set(LINKED_ARGUMENTS) | set(TEMPLATE_VALUES)
    for node in DEFAULT_CLASSES:
        fields[node] = classes[node]
        fields[f"{node}_args"] = "".join(
            f"\n    {arg}: {_yaml_value(value)}"
            for arg, value in kwargs[node].items()
            if (node, arg) not in written
        )
    for node, arg in TEMPLATE_VALUES:
        fields[arg] = _yaml_value(kwargs[node][arg])
    return string.Template(_template()).substitute(fields), stateful_norm


def export_encoder(
    output_folder: str,
    export_folder: Optional[str] = None,
    average_last: int = 1,
    n_mels: Optional[int] = None,
    channels: Optional[Sequence[int]] = None,
    emb_dim: Optional[int] = None,
    sample_rate: Optional[int] = None,
    recoverable: str = ENCODER_CKPT,
    select: str = selection_rules.SELECT_LAST,
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
    select : str
        ``last``: the ``average_last`` most recent epochs; ``best_dev``:
        the ``average_last`` epochs of lowest dev validation EER
        (:mod:`speechbrain_ssps.checkpoint_selection`; recorded in
        ``selection.json``).

    Returns
    -------
    str
        The export folder (absolute path).

    Example
    -------
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> out = getfixture("tmp_path")
    >>> _ = (out / "hyperparams.yaml").write_text(
    ...     "n_mels: 24\\nchannels: [8, 8, 8, 8, 24]\\nemb_dim: 16\\n"
    ... )
    >>> model = ECAPA_TDNN(24, channels=[8, 8, 8, 8, 24], lin_neurons=16)
    >>> ckpt = Checkpointer(str(out / "save"), {"embedding_model": model})
    >>> _ = ckpt.save_checkpoint(meta={"epoch": 1}, end_of_epoch=True)
    >>> folder = export_encoder(str(out))
    >>> sorted(os.listdir(folder))
    ['embedding_model.ckpt', 'hyperparams.yaml', 'selection.json']
    """
    if int(average_last) < 1:
        raise ValueError(f"average_last must be >= 1, got {average_last}")
    output_folder = os.path.abspath(output_folder)
    tree = read_training_hparams(
        os.path.join(output_folder, "hyperparams.yaml")
    )
    save_folder = os.path.join(output_folder, "save")
    checkpoints = find_epoch_checkpoints(save_folder)
    chosen, selection = selection_rules.select_checkpoints(
        checkpoints, select, average_last, save_folder
    )
    state_dict = average_encoder(chosen, recoverable)
    epochs = selection["epochs"]
    names = ", ".join(os.path.basename(c.path) for c in chosen)
    header = (
        f"# from: {output_folder}\n"
        f"# encoder: {recoverable}, epochs {epochs} averaged\n"
        f"# checkpoints: {names}\n{selection_rules.selection_header(selection)}"
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
    selection_rules.write_selection(export_folder, selection)
    logger.info(
        f"Exported {recoverable} (epochs {epochs}) of {output_folder} to "
        f"{export_folder}"
    )
    return export_folder
