"""The job of one MiniVox worker process: every utterance of one speaker.

A job draws the speaker's voice and, for every video, its session voice
and channel, then synthesises and writes the video's utterances and
returns the speaker's metadata rows. All draws are seeded per (seed,
speaker, video, utterance), so the files do not depend on which process
runs which job.
"""

from pathlib import Path
from typing import Dict, Tuple

from speechbrain_ssps.minivox.audio import write_pcm16
from speechbrain_ssps.minivox.channels import Channel
from speechbrain_ssps.minivox.ids import speaker_id, video_ids
from speechbrain_ssps.minivox.metadata import _fmt
from speechbrain_ssps.minivox.seeds import (
    _TAG_CHANNEL,
    _TAG_SESSION,
    _TAG_UTTERANCE,
    _TAG_VOICE,
    _rng,
)
from speechbrain_ssps.minivox.synthesis import synthesize_utterance
from speechbrain_ssps.minivox.voices import Voice


def _speaker_job(job: Tuple) -> Dict:
    """Synthesise and write every utterance of one speaker (pool worker)."""
    (
        wav_dir,
        index,
        seed,
        num_videos,
        num_utterances,
        min_dur,
        max_dur,
        strength,
        session_amount,
    ) = job
    spk = speaker_id(index)
    voice = Voice.sample(_rng(seed, _TAG_VOICE, index))
    videos = []
    num_samples = 0
    for video, vid in enumerate(video_ids(seed, index, num_videos)):
        session = voice.session(
            _rng(seed, _TAG_SESSION, index, video), session_amount
        )
        channel = Channel.sample(
            _rng(seed, _TAG_CHANNEL, index, video), strength
        )
        folder = Path(wav_dir) / spk / vid
        folder.mkdir(parents=True, exist_ok=True)
        for utt in range(num_utterances):
            rng = _rng(seed, _TAG_UTTERANCE, index, video, utt)
            duration = float(rng.uniform(min_dur, max_dur))
            wav = synthesize_utterance(session, channel, duration, rng)
            num_samples += write_pcm16(folder / f"{utt + 1:05d}.wav", wav)
        videos.append(
            {
                "video_id": vid,
                "session_f0_mean_hz": _fmt(session.f0_mean),
                "session_speaking_rate": _fmt(session.speaking_rate),
                "session_tilt_db_per_octave": _fmt(session.tilt),
                **channel.describe(),
            }
        )
    return {
        "spk_id": spk,
        "voice": voice.describe(),
        "videos": videos,
        "num_samples": num_samples,
    }
