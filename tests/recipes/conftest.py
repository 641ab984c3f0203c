"""Shared fixtures of the recipe tests: a tiny MiniVox corpus."""

import pytest


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A MiniVox corpus: 4 training speakers x 2 videos x 3 utterances."""
    from speechbrain_ssps.minivox import generate_corpus

    root = tmp_path_factory.mktemp("minivox")
    generate_corpus(
        root,
        num_speakers=4,
        num_videos=2,
        num_utterances=3,
        num_test_speakers=2,
        seed=0,
        min_duration=0.8,
        max_duration=1.2,
        workers=1,
    )
    return str(root)
