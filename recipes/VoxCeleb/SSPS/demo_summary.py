"""The MiniVox demo's closing summary: both runs side by side, one verdict.

``minivox_demo.py`` reads each run's verification results and last logged
epoch, prints them as a markdown table, says what the SSPS run trained and
whether SSPS beat the baseline, with SSPS's premise (the share of its
pseudo-positives from the anchor's speaker).

Authors
 * speechbrain-ssps contributors
"""

import json
import os

# The regime benchmark's SSPS, for the closing note (recipe README).
REGIME_NOTE = (
    "On the MiniVox regime corpus (100 speakers, 24 epochs, ~45 min a run "
    "here) SSPS's pseudo-positives have the anchor's speaker ~80 % of the "
    "time and SSPS reaches 0.63x the baseline's EER (SimCLR, 3 seeds); "
    "see benchmarks/minivox_quality.py and the recipe README."
)


def last_epoch_stats(train_log):
    """The values logged for the last epoch of ``train_log.txt``."""
    from speechbrain_ssps.curves import parse_train_log

    epochs = parse_train_log(train_log)
    return epochs[max(epochs)]


def summary_row(out):
    """EER, minDCF and the last epoch's SSPS diagnostics of one run."""
    path = os.path.join(out, "verification", "results.json")
    with open(path, encoding="utf-8") as f:
        result = json.load(f)["O"]
    row = {"eer_percent": result["eer_percent"], "min_dcf": result["min_dcf"]}
    stats = last_epoch_stats(os.path.join(out, "train_log.txt"))
    for key in ("speaker_acc", "video_acc", "nmi_speaker", "nmi_video"):
        if key in stats:
            row[key] = stats[key]
    return row


def continuation_line(continued, ssps_start, epochs):
    """What the SSPS run trained, for the closing summary.

    Examples
    --------
    >>> continuation_line(12, 13, 16)[:57]
    "SSPS continued the baseline's epoch 12, filled its queues"
    """
    if continued == ssps_start - 1:
        how = (
            f"filled its queues in one eval-mode pass and trained epochs "
            f"{ssps_start}-{epochs} with SSPS"
        )
    else:
        how = (
            f"trained epochs {continued + 1}-{epochs} (epoch {continued + 1} "
            "fills its queues)"
        )
    return (
        f"SSPS continued the baseline's epoch {continued}, {how}; "
        "diagnostics are those of its last epoch."
    )


def verdict(rows):
    """One sentence on what the two rows show, with SSPS's premise.

    Examples
    --------
    >>> rows = {"baseline": {"eer_percent": 15.0},
    ...         "ssps": {"eer_percent": 19.0, "speaker_acc": 0.69}}
    >>> verdict(rows).split(":")[0]
    'SSPS did not beat the baseline here (19.00 % vs 15.00 % EER)'
    """
    base, ssps = rows["baseline"]["eer_percent"], rows["ssps"]["eer_percent"]
    share = rows["ssps"].get("speaker_acc")
    premise = (
        f"{100 * share:.0f} % of its pseudo-positives had the anchor's speaker"
        if share is not None
        else "no SSPS diagnostics were logged"
    )
    if ssps < base:
        return (
            f"SSPS beat the baseline ({ssps:.2f} % vs {base:.2f} % EER, "
            f"{ssps / base:.2f}x): {premise}."
        )
    return (
        f"SSPS did not beat the baseline here ({ssps:.2f} % vs {base:.2f} % "
        f"EER): {premise}. " + REGIME_NOTE
    )


def print_table(rows):
    """The two models side by side, as a markdown table."""
    labels = (
        ("eer_percent", "EER (MiniVox-O, %)", "{:.2f}"),
        ("min_dcf", "minDCF (p=0.01)", "{:.4f}"),
        ("speaker_acc", "pseudo-positives: anchor's speaker", "{:.3f}"),
        ("video_acc", "pseudo-positives: anchor's video", "{:.3f}"),
        ("nmi_speaker", "SSPS k-means NMI (speaker)", "{:.3f}"),
        ("nmi_video", "SSPS k-means NMI (video)", "{:.3f}"),
    )
    print(f"| {'':36s} | {'baseline':>10s} | {'SSPS':>10s} |")
    print(f"|{'-' * 38}|{'-' * 12}|{'-' * 12}|")
    for key, label, spec in labels:
        cells = [
            spec.format(row[key]) if key in row else "-"
            for row in (rows["baseline"], rows["ssps"])
        ]
        print(f"| {label:36s} | {cells[0]:>10s} | {cells[1]:>10s} |")
