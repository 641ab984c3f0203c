"""Tests for speechbrain_ssps.curves: train_log.txt parsing and curves.png."""

import os
from types import SimpleNamespace

import matplotlib.image
import pytest

from speechbrain_ssps import curves
from speechbrain_ssps.curves import (
    chosen_panels,
    parse_line,
    parse_train_log,
    plot_training_curves,
    write_training_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Lines as FileTrainLogger writes them (SSLBrain.on_stage_end): a DINO +
# SSPS run resumed at epoch 3 twice, once after being killed in the middle
# of a line (the resumed run's first line is glued to it), then killed
# again in the middle of its last line.
PLAIN = (
    "epoch: {e}, lr: 1.0000e-01 - train loss: {loss}, train wd: 5.0000e-05, "
    "train coverage: 0.0000e+00, train filled: {filled}, "
    "train speaker_acc: 0.0000e+00, train video_acc: 0.0000e+00, "
    "train valid_eer: {eer}, train valid_mindcf: 9.0000e-01\n"
)
ACTIVE = (
    "epoch: {e}, lr: 5.0000e-02 - train loss: {loss}, "
    "train coverage: 8.7500e-01, train filled: 1.0000e+00, "
    "train speaker_acc: 6.0000e-01, train video_acc: 2.0000e-01, "
    "train nmi_speaker: 7.0000e-01, train nmi_video: 5.0000e-01, "
    "train valid_eer: {eer}\n"
)
RESUMED_LOG = (
    PLAIN.format(e=1, loss="5.50", filled="0.0000e+00", eer="40.00")
    + PLAIN.format(e=2, loss="5.00", filled="1.0000e+00", eer="30.00")
    + ACTIVE.format(e=3, loss="4.80", eer="25.00")
    + "some other line\n"
    + PLAIN.format(e=3, loss="4.70", filled="1.0000e+00", eer="26.00")
    + "epoch: 4, lr: 5.0000e-02 - train loss: 4.5"  # killed mid-line
    + ACTIVE.format(e=3, loss="4.60", eer="24.00")
    + ACTIVE.format(e=4, loss="4.40", eer="22.00")
    + "epoch: 5, lr: 5.0000e-02 - train loss: 4.2"
)


@pytest.fixture
def resumed_log(tmp_path):
    path = tmp_path / "run" / "train_log.txt"
    path.parent.mkdir()
    path.write_text(RESUMED_LOG)
    return str(path)


def assert_png(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 300
    assert image[..., :3].std() > 0.05  # something is drawn on it


def test_parse_line_prefixes_and_skips():
    line = (
        "epoch: 7, lr: 1.0e-03 - train loss: 4.5, train note: abc "
        "- valid loss: 3.0, valid error_rate: 2.50e-01"
    )
    epoch, values = parse_line(line)
    assert epoch == 7
    assert values == {
        "lr": 1e-3,
        "loss": 4.5,
        "valid_loss": 3.0,
        "valid_error_rate": 0.25,
    }
    assert parse_line("speechbrain.core - Beginning experiment!") is None
    assert parse_line("epoch: 2.5 - train loss: 1.0") is None


def test_resumed_and_partial_log(resumed_log):
    epochs = parse_train_log(resumed_log)
    # The cut line of epoch 5 is left out; epoch 3, logged three times,
    # keeps its last line.
    assert list(epochs) == [1, 2, 3, 4]
    assert epochs[3]["loss"] == 4.6  # also when glued to a cut line
    assert epochs[4]["loss"] == 4.4
    assert epochs[3]["valid_eer"] == 24.0
    assert epochs[3]["nmi_speaker"] == 0.7
    # Keys appear from some epoch on: NMI only once SSPS has clusters.
    assert "nmi_speaker" not in epochs[2]
    assert "valid_mindcf" not in epochs[4]
    assert epochs[1]["lr"] == 0.1


def test_panels_follow_the_logged_keys():
    plain = {1: {"loss": 1.0, "lr": 0.1}, 2: {"loss": 0.9, "lr": 0.1}}
    titles = [p.title for p in chosen_panels(plain)]
    # Core panels always (validation says "not logged"), no SSPS panel.
    assert titles == ["Training loss", "Learning rate", "Validation"]
    with_ssps = {1: {"loss": 1.0, "coverage": 0.0}}
    titles = [p.title for p in chosen_panels(with_ssps)]
    assert len(titles) == 6 and "SSPS pseudo-positive accuracy" in titles
    stage_two = {1: {"loss": 1.0, "error_rate": 0.5}}
    assert "Training error rate (stage two)" in [
        p.title for p in chosen_panels(stage_two)
    ]


def _capture_axes(monkeypatch):
    """Records the axes each panel is drawn on."""
    drawn = []
    real = curves._draw_panel

    def spy(axes, epochs, panel, ssps_start):
        real(axes, epochs, panel, ssps_start)
        drawn.append((panel, axes))

    monkeypatch.setattr(curves, "_draw_panel", spy)
    return drawn


def test_picture_with_ssps_marker(resumed_log, tmp_path, monkeypatch):
    drawn = _capture_axes(monkeypatch)
    png = str(tmp_path / "out" / "curves.png")
    assert plot_training_curves(resumed_log, png, ssps_start_epoch=3) == png
    assert_png(png)
    assert len(drawn) == 6
    for panel, axes in drawn:
        # The SSPS start: a vertical line between epochs 2 and 3.
        verticals = [
            ln
            for ln in axes.get_lines()
            if len(set(ln.get_xdata())) == 1 and ln.get_linestyle() == "--"
        ]
        assert [v.get_xdata()[0] for v in verticals] == [2.5], panel.title
    by_title = {p.title: axes for p, axes in drawn}
    loss = by_title["Training loss"].get_lines()[0]
    assert list(loss.get_xdata()) == [1, 2, 3, 4]
    assert list(loss.get_ydata()) == [5.5, 5.0, 4.6, 4.4]
    # Accuracies are drawn only where SSPS found pseudo-positives.
    accuracy = by_title["SSPS pseudo-positive accuracy"].get_lines()[0]
    assert list(accuracy.get_xdata()) == [3, 4]
    # minDCF (epochs 1-2) on the validation panel's right axis.
    validation = by_title["Validation"]
    twin = [a for a in validation.figure.axes if a is not validation]
    twin = [a for a in twin if a.bbox.bounds == validation.bbox.bounds]
    assert [ln.get_label() for ln in twin[0].get_lines()] == ["minDCF"]
    assert not [p for p in os.listdir(tmp_path / "out") if p != "curves.png"]


def test_marker_outside_the_logged_epochs_goes_in_the_title(
    resumed_log, tmp_path, monkeypatch
):
    drawn = _capture_axes(monkeypatch)
    png = str(tmp_path / "curves.png")
    plot_training_curves(resumed_log, png, ssps_start_epoch=81, title="t")
    figure = drawn[0][1].figure
    assert "SSPS from epoch 81" in figure.get_suptitle()
    assert all(
        max(ln.get_xdata()) <= 4 for _, axes in drawn for ln in axes.get_lines()
    )


def test_plain_log_says_not_logged(tmp_path, monkeypatch):
    drawn = _capture_axes(monkeypatch)
    log = tmp_path / "train_log.txt"
    log.write_text("epoch: 1, lr: 1.0e-01 - train loss: 2.0\n")
    png = str(tmp_path / "curves.png")
    assert plot_training_curves(str(log), png) == png
    assert_png(png)
    validation = dict((p.title, a) for p, a in drawn)["Validation"]
    assert [t.get_text() for t in validation.texts] == ["not logged"]
    assert len(validation.figure.axes) == 3  # no empty minDCF axis


def test_empty_log_draws_nothing(tmp_path):
    log = tmp_path / "train_log.txt"
    log.write_text("epoch: 1, lr: 1.0e-01 - train lo")
    png = tmp_path / "curves.png"
    assert plot_training_curves(str(log), str(png)) is None
    assert not png.exists()


def test_picture_replaced_atomically(resumed_log, tmp_path, monkeypatch):
    png = tmp_path / "curves.png"
    png.write_bytes(b"old picture")

    def broken_savefig(self, *args, **kwargs):
        with open(args[0], "wb") as fout:
            fout.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(
        "matplotlib.figure.Figure.savefig", broken_savefig, raising=True
    )
    with pytest.raises(OSError, match="disk full"):
        plot_training_curves(resumed_log, str(png))
    assert png.read_bytes() == b"old picture"  # never a half-written one
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "run"]  # no tmp


def test_write_training_curves_never_raises(resumed_log, tmp_path, caplog):
    folder = os.path.dirname(resumed_log)
    hparams = {"train_log": resumed_log, "output_folder": folder}
    assert write_training_curves(hparams, ssps_start_epoch=3) == os.path.join(
        folder, "curves.png"
    )
    assert_png(os.path.join(folder, "curves.png"))
    # A namespace (SSLBrain's hparams) works too; no log yet: nothing.
    missing = SimpleNamespace(train_log=str(tmp_path / "no.txt"))
    missing.output_folder = str(tmp_path)
    assert write_training_curves(missing) is None
    assert write_training_curves(SimpleNamespace()) is None
    # write_curves: False (the yamls' switch) draws nothing, True draws.
    off = tmp_path / "off"
    off.mkdir()
    log = str(off / "train_log.txt")
    with open(resumed_log, encoding="utf-8") as src:
        with open(log, "w", encoding="utf-8") as dst:
            dst.write(src.read())
    switched = {"train_log": log, "output_folder": str(off)}
    assert write_training_curves({**switched, "write_curves": False}) is None
    assert not (off / "curves.png").exists()
    assert write_training_curves({**switched, "write_curves": True})
    assert_png(str(off / "curves.png"))
    # A failure is a warning, not an exception.
    bad = {"train_log": resumed_log, "output_folder": resumed_log}
    with caplog.at_level("WARNING"):
        assert write_training_curves(bad) is None
    assert "curves.png not written" in caplog.text
