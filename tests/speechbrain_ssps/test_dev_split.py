"""Tests of speechbrain_ssps.dev_split: dev speakers and dev trials."""

from collections import Counter

import pytest

from speechbrain_ssps import dev_split
from speechbrain_ssps.trials import read_trials


def corpus(speakers, videos, utterances):
    """(ID, speaker, video) of a regular toy corpus."""
    return [
        (f"s{s:03d}/v{v}/{u:05d}", f"s{s:03d}", f"v{v}")
        for s in range(speakers)
        for v in range(videos)
        for u in range(utterances)
    ]


def check_list(trials, utterances, cross_video=True):
    """Balanced, no pair twice, labels right, targets across videos."""
    info = {utt: (spk, vid) for utt, spk, vid in utterances}
    labels = [label for label, _, _ in trials]
    assert labels.count(1) == labels.count(0) > 0
    pairs = [frozenset((a, b)) for _, a, b in trials]
    assert len(set(pairs)) == len(pairs)
    for label, enrol, test in trials:
        assert enrol != test
        same = info[enrol][0] == info[test][0]
        assert same == bool(label)
        if label and cross_video:
            assert info[enrol][1] != info[test][1]


def test_choose_dev_speakers_is_seeded_and_sorted():
    speakers = [f"id{i:05d}" for i in range(50)]
    first = dev_split.choose_dev_speakers(speakers, 10, seed=3)
    assert first == dev_split.choose_dev_speakers(speakers[::-1], 10, seed=3)
    assert first == sorted(first) and len(set(first)) == 10
    assert set(first) <= set(speakers)
    assert first != dev_split.choose_dev_speakers(speakers, 10, seed=4)


@pytest.mark.parametrize("num", [4, 5])
def test_choose_dev_speakers_keeps_one_training_speaker(num):
    with pytest.raises(ValueError, match=f"--dev_speakers={num}: .* only 4"):
        dev_split.choose_dev_speakers(["a", "b", "c", "d"], num)


@pytest.mark.parametrize(
    "args, match",
    [
        ((-2, 10, 5), "--dev_speakers=-2: must be >= 0"),
        ((1, 10, 5), "--dev_speakers=1: .*non-target"),
        ((3, 1, 5), "--dev_trials=1"),
        ((3, 10, 1), "--dev_utterances=1"),
    ],
)
def test_bad_options_name_the_option(args, match):
    with pytest.raises(ValueError, match=match):
        dev_split.check_dev_options(*args)
    dev_split.check_dev_options(0, 10, 5)  # no dev split: fine


def test_small_dev_list_enumerates_every_pair():
    utts = corpus(3, 2, 2)  # 12 utterances: 12 cross-video target pairs
    trials = dev_split.make_dev_trials(utts, num_trials=1000, seed=0)
    check_list(trials, utts)
    assert len(trials) == 2 * 12  # capped by the targets, still balanced
    assert trials == sorted(trials, key=lambda t: (t[1], t[2], t[0]))


def test_large_dev_list_is_drawn_balanced_and_seeded():
    utts = corpus(60, 4, 12)  # 2880 utterances: the drawn path
    trials = dev_split.make_dev_trials(utts, 3000, max_utterances=40, seed=1)
    check_list(trials, utts)
    assert len(trials) == 3000
    used = {u for _, a, b in trials for u in (a, b)}
    per_speaker = Counter(utt.split("/")[0] for utt in used)
    assert max(per_speaker.values()) <= 40  # the cost bound
    again = dev_split.make_dev_trials(utts, 3000, max_utterances=40, seed=1)
    assert again == trials
    other = dev_split.make_dev_trials(utts, 3000, max_utterances=40, seed=2)
    assert other != trials


def test_single_video_speakers_use_same_video_targets():
    utts = corpus(2, 1, 3)
    trials = dev_split.make_dev_trials(utts, 100, seed=0)
    check_list(trials, utts, cross_video=False)
    assert len(trials) == 2 * 6  # 2 x C(3, 2) targets, 9 non-targets


def test_no_target_pair_is_an_error():
    utts = corpus(3, 1, 1)  # one utterance per speaker
    with pytest.raises(ValueError, match="--dev_speakers: no dev speaker"):
        dev_split.make_dev_trials(utts, 10)


def test_written_list_reads_back(tmp_path):
    utts = corpus(3, 2, 2)
    trials = dev_split.make_dev_trials(utts, 20, seed=0)
    path = tmp_path / dev_split.DEV_TRIALS
    dev_split.write_dev_trials(str(path), trials)
    assert read_trials(str(path)) == trials
    assert not list(tmp_path.glob("*.tmp"))


def test_validation_files_and_missing_message(tmp_path):
    trials, manifest = dev_split.validation_files(str(tmp_path), "dev")
    assert trials.endswith("dev_trials.txt") and manifest.endswith("dev.csv")
    message = dev_split.missing_dev_message(trials)
    assert "--valid_trials=dev" in message and "--dev_speakers" in message
    assert trials in message
