"""Training curves: ``train_log.txt`` read back and drawn as one picture.

SpeechBrain's ``FileTrainLogger`` appends one line per epoch::

    epoch: 3, lr: 8.7593e-02 - train loss: 4.6840, train coverage: ...

:func:`parse_train_log` turns the file back into ``{epoch: {key: value}}``
(the last line of an epoch wins: a resumed run logs an epoch again; an
unterminated last line, written by a killed process, is ignored), and
:func:`plot_training_curves` draws one panel per logged quantity: loss,
learning rate, validation EER and minDCF, and SSPS's diagnostics (coverage,
pseudo-positive speaker / video accuracy, NMI of the k-means clusters with
speakers and videos), with the epoch SSPS starts marked on every panel.
:func:`write_training_curves` is what the recipe calls after each epoch; it
never raises.

Authors
 * speechbrain-ssps contributors
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from speechbrain_ssps.plots import blank_figure, save_figure

logger = logging.getLogger(__name__)

_ITEM = re.compile(r"^(?:(train|valid|test) )?(\w+): (\S+)$")
# A line a killed run left unterminated, glued to the resumed run's next one.
_GLUED = re.compile(r"(?<=[^\s,])(?=epoch: )")
_NO_LINE = "not logged"


@dataclass(frozen=True)
class Panel:
    """One panel of the picture.

    Arguments
    ---------
    title : str
        Panel title.
    series : tuple of (str, str)
        ``(log key, legend label)`` of each line.
    ylabel : str
        Y-axis label.
    group : str
        ``core`` panels are always drawn ("not logged" when empty), ``ssps``
        ones when the log holds any SSPS key, ``extra`` ones only when their
        own keys are logged.
    right : tuple of (str, str)
        Lines on a second y axis, on the right.
    right_label : str
        Its label.
    log_scale : bool
        Logarithmic y axis (when every value is positive and they span
        more than a factor of 20).
    fraction : bool
        Values in [0, 1]: the y axis is fixed to that range.
    needs_coverage : bool
        Only epochs with pseudo-positives (``coverage`` > 0) are drawn: the
        accuracies are 0 by convention before SSPS samples anything.
    """

    title: str
    series: Tuple[Tuple[str, str], ...]
    ylabel: str
    group: str = "core"
    right: Tuple[Tuple[str, str], ...] = ()
    right_label: str = ""
    log_scale: bool = False
    fraction: bool = False
    needs_coverage: bool = False

    @property
    def keys(self) -> List[str]:
        """The log keys of the panel."""
        return [key for key, _ in self.series + self.right]


PANELS = (
    Panel("Training loss", (("loss", "loss"),), "loss"),
    Panel("Learning rate", (("lr", "lr"),), "lr", log_scale=True),
    Panel(
        "Validation",
        (("valid_eer", "EER (%)"),),
        "EER (%)",
        right=(("valid_mindcf", "minDCF"),),
        right_label="minDCF",
    ),
    Panel(
        "Training error rate (stage two)",
        (("error_rate", "error rate"),),
        "error rate",
        "extra",
        fraction=True,
    ),
    Panel(
        "SSPS coverage and reference queue",
        (("coverage", "coverage"), ("filled", "queue filled")),
        "fraction",
        "ssps",
        fraction=True,
    ),
    Panel(
        "SSPS pseudo-positive accuracy",
        (("speaker_acc", "same speaker"), ("video_acc", "same video")),
        "fraction of pseudo-positives",
        "ssps",
        fraction=True,
        needs_coverage=True,
    ),
    Panel(
        "NMI of SSPS's k-means clusters",
        (("nmi_speaker", "with speakers"), ("nmi_video", "with videos")),
        "NMI",
        "ssps",
        fraction=True,
    ),
)
SSPS_KEYS = frozenset(k for p in PANELS if p.group == "ssps" for k in p.keys)


def _number(text: str) -> Optional[float]:
    """The value of a logged number, or None (``tensor(..)``, words)."""
    try:
        return float(text)
    except ValueError:
        return None


def parse_line(line: str) -> Optional[Tuple[int, Dict[str, float]]]:
    """One ``FileTrainLogger`` line: its epoch and numeric values.

    Keys of the train stage keep their name (``loss``, ``valid_eer``);
    those of the valid and test stages get a ``valid_`` / ``test_`` prefix.
    Items that are not numbers are left out.

    Arguments
    ---------
    line : str
        A log line.

    Returns
    -------
    (int, dict) or None
        The epoch and its values; None for a line without an integer epoch.

    Example
    -------
    >>> parse_line("epoch: 2, lr: 1.0e-03 - train loss: 4.5, train x: abc")
    (2, {'lr': 0.001, 'loss': 4.5})
    """
    values: Dict[str, float] = {}
    for section in line.strip().split(" - "):
        for item in section.split(", "):
            match = _ITEM.match(item.strip())
            value = _number(match.group(3)) if match else None
            if value is None:
                continue
            stage, key = match.group(1), match.group(2)
            values[key if stage in (None, "train") else f"{stage}_{key}"] = (
                value
            )
    epoch = values.pop("epoch", None)
    if epoch is None or not math.isfinite(epoch) or epoch != int(epoch):
        return None
    return int(epoch), values


def parse_train_log(path: str) -> Dict[int, Dict[str, float]]:
    """Every epoch of a ``train_log.txt``, in epoch order.

    Arguments
    ---------
    path : str
        The log written by ``FileTrainLogger``.

    Returns
    -------
    dict
        ``{epoch: {key: value}}``. An epoch logged twice (a resumed run)
        keeps its last line; an unterminated line (the writer was killed
        in the middle) and lines without an epoch are skipped, also when
        the resumed run's first line was appended to it.

    Example
    -------
    >>> path = getfixture("tmp_path") / "train_log.txt"
    >>> _ = path.write_text(
    ...     "epoch: 1 - train loss: 5.0\\nepoch: 2 - train loss: 4.0\\n"
    ...     "epoch: 2 - train loss: 3.5\\nepoch: 3 - train lo"
    ... )
    >>> parse_train_log(str(path))
    {1: {'loss': 5.0}, 2: {'loss': 3.5}}
    """
    with open(path, encoding="utf-8", errors="replace") as fin:
        text = fin.read()
    lines = text.split("\n")[:-1]  # the text after the last newline is cut
    epochs: Dict[int, Dict[str, float]] = {}
    for line in lines:
        parsed = parse_line(_GLUED.split(line)[-1])
        if parsed is not None:
            epochs[parsed[0]] = parsed[1]
    return dict(sorted(epochs.items()))


def chosen_panels(epochs: Mapping[int, Mapping[str, float]]) -> List[Panel]:
    """The panels drawn for a log (see :class:`Panel`'s ``group``).

    Example
    -------
    >>> [p.title for p in chosen_panels({1: {"loss": 1.0, "lr": 0.1}})]
    ['Training loss', 'Learning rate', 'Validation']
    """
    logged = {key for values in epochs.values() for key in values}
    with_ssps = bool(logged & SSPS_KEYS)
    return [
        p
        for p in PANELS
        if p.group == "core"
        or (p.group == "ssps" and with_ssps)
        or (p.group == "extra" and set(p.keys) & logged)
    ]


def _series(epochs, panel: Panel, key: str) -> Tuple[List[int], List[float]]:
    """The epochs that log ``key`` (with pseudo-positives if needed)."""
    xs, ys = [], []
    for epoch, values in epochs.items():
        if key not in values:
            continue
        if panel.needs_coverage and not values.get("coverage", 0.0) > 0.0:
            continue
        xs.append(epoch)
        ys.append(values[key])
    return xs, ys


def _draw_lines(axes, epochs, panel: Panel, series, first_colour: int):
    """Draws ``series`` of a panel; returns the values drawn."""
    drawn = []
    for colour, (key, label) in enumerate(series, first_colour):
        xs, ys = _series(epochs, panel, key)
        if xs:
            axes.plot(
                xs, ys, "o-", ms=3, lw=1.3, color=f"C{colour}", label=label
            )
            drawn.extend(y for y in ys if math.isfinite(y))
    if panel.fraction:
        axes.set_ylim(-0.03, 1.03)
    elif panel.log_scale and drawn and min(drawn) > 0:
        if max(drawn) > 20 * min(drawn):
            axes.set_yscale("log")
    return drawn


def _draw_panel(axes, epochs, panel: Panel, ssps_start: Optional[int]):
    """One panel: its lines, the SSPS marker, labels and legend."""
    from matplotlib.ticker import MaxNLocator

    drawn = _draw_lines(axes, epochs, panel, panel.series, 0)
    legend_axes = axes
    if any(_series(epochs, panel, key)[0] for key, _ in panel.right):
        legend_axes = axes.twinx()
        drawn += _draw_lines(
            legend_axes, epochs, panel, panel.right, len(panel.series)
        )
        legend_axes.set_ylabel(panel.right_label, fontsize=9)
        legend_axes.tick_params(labelsize=8)
    if not drawn:
        axes.text(
            0.5, 0.5, _NO_LINE, ha="center", va="center",
            transform=axes.transAxes, color="0.5",
        )  # fmt: skip
    first, last = min(epochs), max(epochs)
    axes.set_xlim(first - 0.6, last + 0.6)
    if ssps_start is not None and first <= ssps_start <= last + 1:
        axes.axvline(ssps_start - 0.5, color="0.3", ls="--", lw=1)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(panel.title, fontsize=10)
    axes.set_xlabel("epoch", fontsize=9)
    axes.set_ylabel(panel.ylabel, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(True, lw=0.5, alpha=0.5)
    handles, labels = [], []
    for each in dict.fromkeys([axes, legend_axes]):
        h, lab = each.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if len(handles) > 1:  # under the axes: never over a curve
        legend_axes.legend(
            handles, labels, fontsize=8, ncol=len(handles),
            loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False,
        )  # fmt: skip


def plot_training_curves(
    log_path: str,
    png_path: str,
    ssps_start_epoch: Optional[int] = None,
    title: Optional[str] = None,
) -> Optional[str]:
    """Draws the curves of a ``train_log.txt`` (written atomically).

    Arguments
    ---------
    log_path : str
        The training log.
    png_path : str
        The picture; folders are created, an older one is replaced.
    ssps_start_epoch : int, optional
        First epoch with SSPS positives: named in the title, and a dashed
        line before it on every panel when it lies within the logged epochs.
    title : str, optional
        Title of the picture (default: the log's folder).

    Returns
    -------
    str or None
        png_path, or None when the log holds no complete epoch yet.

    Example
    -------
    >>> log = getfixture("tmp_path") / "train_log.txt"
    >>> _ = log.write_text("epoch: 1, lr: 0.1 - train loss: 5.0\\n")
    >>> png = str(getfixture("tmp_path") / "curves.png")
    >>> plot_training_curves(str(log), png, ssps_start_epoch=2) == png
    True
    """
    epochs = parse_train_log(log_path)
    if not epochs:
        return None
    panels = chosen_panels(epochs)
    columns = 2 if len(panels) <= 4 else 3
    rows = -(-len(panels) // columns)
    figure = blank_figure(4.2 * columns, 3.0 * rows + 0.5)
    for i, panel in enumerate(panels):
        axes = figure.add_subplot(rows, columns, i + 1)
        _draw_panel(axes, epochs, panel, ssps_start_epoch)
    name = title or os.path.basename(os.path.dirname(os.path.abspath(log_path)))
    heading = f"{name}: epochs {min(epochs)}-{max(epochs)}"
    if ssps_start_epoch is not None:
        shown = min(epochs) <= ssps_start_epoch <= max(epochs) + 1
        heading += f"; SSPS from epoch {ssps_start_epoch}" + (
            " (dashed line)" if shown else ""
        )
    figure.suptitle(heading, fontsize=12)
    figure.tight_layout()
    return save_figure(figure, png_path)


def write_training_curves(
    hparams, ssps_start_epoch: Optional[int] = None
) -> Optional[str]:
    """``<output_folder>/curves.png`` from ``train_log``; never raises.

    What a training script calls after each epoch's log line (on the main
    process). Nothing is drawn without ``train_log`` and ``output_folder``
    in ``hparams``, or with ``write_curves: False`` (the recipe tests'
    tiny runs, where a redraw costs more than an epoch); a failure is
    logged as a warning, training goes on.

    Arguments
    ---------
    hparams : mapping or namespace
        The run's hyperparameters.
    ssps_start_epoch : int, optional
        As for :func:`plot_training_curves`.

    Returns
    -------
    str or None
        The picture's path, or None when nothing was written.
    """
    get = hparams.get if isinstance(hparams, Mapping) else (
        lambda key: getattr(hparams, key, None)
    )  # fmt: skip
    if get("write_curves") is False:
        return None
    log_path, folder = get("train_log"), get("output_folder")
    if not log_path or not folder or not os.path.isfile(log_path):
        return None
    parts = os.path.normpath(os.path.abspath(folder)).split(os.sep)
    try:
        return plot_training_curves(
            log_path,
            os.path.join(folder, "curves.png"),
            ssps_start_epoch=ssps_start_epoch,
            title="/".join(parts[-2:]),
        )
    except Exception as error:  # a picture must never stop training
        logger.warning(f"curves.png not written: {error!r}")
        return None
