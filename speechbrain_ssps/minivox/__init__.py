"""MiniVox: a small synthetic multi-speaker corpus laid out like VoxCeleb.

The corpus exists to test and study SSPS without downloading VoxCeleb. Like
VoxCeleb, every speaker is recorded in several "videos", and every video has
its own recording channel (room, microphone, noise, level) shared by all of
its utterances. A model trained with same-utterance positives can therefore
match two crops by channel instead of voice, which is the confound SSPS
removes. The trial list only uses test speakers; it is balanced, and its
target trials always pair two different videos of the same speaker.

Everything is seeded per (seed, speaker, video, utterance), so the files
do not depend on the number of worker processes, and the same arguments
give byte-identical files.

Modules
-------
``voices``
    :class:`Voice`, the source-filter parameters of a speaker, and its
    per-video session changes.
``channels``
    :class:`Channel`, the room, noise, equaliser, band-limiting and level
    of a video.
``phonetics``
    Vowel and consonant tables and the random syllable sequence of an
    utterance.
``stft``
    The STFT grid of the synthesiser and resonator envelopes on it.
``synthesis``
    :func:`synthesize_speech` and :func:`synthesize_utterance`.
``trials``
    :func:`trial_capacity`, :func:`sample_trials`,
    :func:`default_num_trials`.
``ids``
    :func:`speaker_id` and :func:`video_ids`.
``workers``
    The per-speaker job that writes one speaker's files.
``corpus``
    The layout on disk and :func:`generate_corpus`.
``augmentation``, ``augmentation_layout``, ``augmentation_sounds``, ``augmentation_music``, ``augmentation_rooms``
    Synthetic augmentation data in the MUSAN (noise, music, babble) and
    simulated-RIR layouts: ``augmentation.generate_augmentation`` (also
    ``python -m speechbrain_ssps.minivox.augmentation``), its file list,
    the sounds and the rooms' impulse responses.
``cli``
    :func:`main`, the command line; ``__main__`` runs it.
``audio``, ``metadata``, ``options``, ``seeds``
    The WAV format, the CSV/JSON writers, option names with their flags,
    and the per-cell random streams.

Command line::

    python -m speechbrain_ssps.minivox --out DIR --speakers 60 --videos 8 \\
        --utterances 10 --test-speakers 10 --seed 0 --workers 2
"""

from speechbrain_ssps.minivox.audio import SAMPLE_RATE
from speechbrain_ssps.minivox.channels import Channel
from speechbrain_ssps.minivox.cli import main
from speechbrain_ssps.minivox.corpus import GENERATOR_VERSION, generate_corpus
from speechbrain_ssps.minivox.ids import (
    FIRST_SPEAKER_NUMBER,
    VIDEO_ID_ALPHABET,
    VIDEO_ID_LENGTH,
    speaker_id,
    video_ids,
)
from speechbrain_ssps.minivox.synthesis import (
    synthesize_speech,
    synthesize_utterance,
)
from speechbrain_ssps.minivox.trials import (
    default_num_trials,
    sample_trials,
    trial_capacity,
)
from speechbrain_ssps.minivox.voices import Voice

__all__ = [
    "FIRST_SPEAKER_NUMBER",
    "GENERATOR_VERSION",
    "SAMPLE_RATE",
    "VIDEO_ID_ALPHABET",
    "VIDEO_ID_LENGTH",
    "Channel",
    "Voice",
    "default_num_trials",
    "generate_corpus",
    "main",
    "sample_trials",
    "speaker_id",
    "synthesize_speech",
    "synthesize_utterance",
    "trial_capacity",
    "video_ids",
]
