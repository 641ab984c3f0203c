"""Simulated rooms of the MiniVox augmentation set and their impulse responses.

A :class:`Room` is a shoebox of one of three size classes (named like the
folders of the simulated RIRs that recipes pass to ``AddReverb``:
``smallroom``, ``mediumroom``, ``largeroom``) with a reverberation time
drawn per room. Every impulse response of a room places a source and a
microphone at random inside it (:meth:`Room.impulse_response`):

* the direct path is a unit spike delayed by the source distance;
* the six first-order wall reflections come from the image sources, with
  the wall reflection coefficient that Sabine's formula gives for the
  room's RT60;
* the diffuse tail is Gaussian noise that builds up after the first
  reflection and decays with the RT60 below a crossover frequency and
  faster above it (air and wall absorption darken the tail); its energy
  follows the critical distance of the room, so a distant source is
  more reverberant than a close one.

The families are broader than the per-video rooms of
:mod:`~speechbrain_ssps.minivox.channels` (RT60 0.1-0.5 s there, up to
1.6 s here; direct-to-diffuse ratios from -10 to 20 dB), so that
reverberation cannot identify a MiniVox video.

Example
-------
>>> room = Room.sample(np.random.default_rng(0), "mediumroom")
>>> h, info = room.impulse_response(np.random.default_rng(1))
>>> int(np.argmax(np.abs(h))) == info["direct_index"]
True
"""

import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
from scipy import signal

from speechbrain_ssps.minivox.audio import SAMPLE_RATE

SPEED_OF_SOUND = 343.0

# Size class -> (RT60 range in s, length range in m, height range in m).
ROOM_SIZES = {
    "smallroom": ((0.1, 0.5), (2.5, 8.0), (2.2, 3.2)),
    "mediumroom": ((0.3, 0.9), (8.0, 20.0), (2.8, 6.0)),
    "largeroom": ((0.6, 1.6), (20.0, 45.0), (5.0, 15.0)),
}

# Limits of the direct-to-reverberant ratio (dB) and of the RIR length (s).
_DRR_RANGE = (-10.0, 20.0)
_MAX_SECONDS = 2.0
_WALL_GAP = 0.3  # closest a source or microphone gets to a wall (m)


@dataclass(frozen=True)
class Room:
    """A shoebox room: its size class, dimensions and reverberation.

    Arguments
    ---------
    size : str
        ``"smallroom"``, ``"mediumroom"`` or ``"largeroom"``.
    dims : tuple of float
        Length, width and height in metres.
    rt60 : float
        Reverberation time (low frequencies) in seconds.
    hf_ratio : float
        RT60 above ``crossover_hz`` as a fraction of ``rt60``.
    crossover_hz : float
        Frequency splitting the slow and the fast decaying tail.

    Example
    -------
    >>> room = Room.sample(np.random.default_rng(0), "largeroom")
    >>> 0.6 <= room.rt60 <= 1.6 and 20.0 <= room.dims[0] <= 45.0
    True
    """

    size: str
    dims: Tuple[float, float, float]
    rt60: float
    hf_ratio: float
    crossover_hz: float

    @classmethod
    def sample(cls, rng: np.random.Generator, size: str) -> "Room":
        """Draw a room of one size class.

        Arguments
        ---------
        rng : numpy.random.Generator
            Source of randomness.
        size : str
            A key of ``ROOM_SIZES``.

        Returns
        -------
        Room
            The room.
        """
        if size not in ROOM_SIZES:
            raise ValueError(
                f"room size must be one of {sorted(ROOM_SIZES)}, got {size!r}"
            )
        (rt_low, rt_high), (len_low, len_high), (h_low, h_high) = ROOM_SIZES[
            size
        ]
        length = float(rng.uniform(len_low, len_high))
        width = length * float(rng.uniform(0.5, 1.0))
        return cls(
            size=size,
            dims=(length, width, float(rng.uniform(h_low, h_high))),
            rt60=float(rng.uniform(rt_low, rt_high)),
            hf_ratio=float(rng.uniform(0.35, 0.9)),
            crossover_hz=math.exp(
                rng.uniform(math.log(800.0), math.log(4000.0))
            ),
        )

    @property
    def volume(self) -> float:
        """Volume in cubic metres."""
        return self.dims[0] * self.dims[1] * self.dims[2]

    @property
    def surface(self) -> float:
        """Area of the six walls in square metres."""
        x, y, z = self.dims
        return 2.0 * (x * y + x * z + y * z)

    def reflection_coefficient(self) -> float:
        """Pressure reflection coefficient of the walls (Sabine's formula).

        Returns
        -------
        float
            ``sqrt(1 - alpha)`` with the absorption ``alpha`` that gives the
            room's RT60, ``alpha`` kept within [0.02, 0.98].

        Example
        -------
        >>> dry = Room("smallroom", (3.0, 3.0, 2.5), 0.1, 0.5, 1000.0)
        >>> wet = Room("smallroom", (3.0, 3.0, 2.5), 0.5, 0.5, 1000.0)
        >>> dry.reflection_coefficient() < wet.reflection_coefficient()
        True
        """
        alpha = 0.161 * self.volume / (self.surface * self.rt60)
        return math.sqrt(1.0 - min(max(alpha, 0.02), 0.98))

    def critical_distance(self) -> float:
        """Distance (m) at which direct and diffuse energy are equal."""
        return 0.057 * math.sqrt(self.volume / self.rt60)

    def _positions(
        self, rng: np.random.Generator
    ) -> Tuple[np.ndarray, np.ndarray]:
        """A source anywhere and a microphone 0.3-5 m away (log-uniform)."""
        dims = np.asarray(self.dims)
        source = rng.uniform(_WALL_GAP, dims - _WALL_GAP)
        target = math.exp(rng.uniform(math.log(0.3), math.log(5.0)))
        for _ in range(100):
            direction = rng.standard_normal(3)
            mic = source + target * direction / np.linalg.norm(direction)
            if np.all(mic >= _WALL_GAP) and np.all(mic <= dims - _WALL_GAP):
                return source, mic
            target = max(0.9 * target, 0.3)
        return source, np.clip(mic, _WALL_GAP, dims - _WALL_GAP)

    def impulse_response(
        self, rng: np.random.Generator
    ) -> Tuple[np.ndarray, Dict[str, float]]:
        """Impulse response from a random source to a random microphone.

        Arguments
        ---------
        rng : numpy.random.Generator
            Source of randomness (positions, jitter of the ratio, tail).

        Returns
        -------
        numpy.ndarray
            The response (float64), peak 0.9 at the direct path.
        dict
            ``distance_m``, ``drr_db`` (of the returned response),
            ``direct_index`` and ``rt60_s``.
        """
        dims = np.asarray(self.dims)
        source, mic = self._positions(rng)
        distance = float(np.linalg.norm(source - mic))
        delay = distance / SPEED_OF_SOUND
        direct = int(round(delay * SAMPLE_RATE))
        length = int(
            min(delay + 1.1 * self.rt60 + 0.02, _MAX_SECONDS) * SAMPLE_RATE
        )
        h = np.zeros(length)

        # First-order image sources: mirror the source in each wall.
        beta = self.reflection_coefficient()
        first = length
        for axis in range(3):
            for wall in (0.0, dims[axis]):
                image = source.copy()
                image[axis] = 2.0 * wall - source[axis]
                image_distance = float(np.linalg.norm(image - mic))
                index = int(
                    round(image_distance / SPEED_OF_SOUND * SAMPLE_RATE)
                )
                if index < length:
                    h[index] += beta * distance / image_distance
                    first = min(first, index)

        # Diffuse tail: builds up from the first reflection, two decay rates.
        start = min(first, length - 1)
        t = np.arange(length - start) / SAMPLE_RATE
        noise = rng.standard_normal((2, length - start))
        low, high = (
            signal.sosfilt(
                signal.butter(
                    2, self.crossover_hz, kind, fs=SAMPLE_RATE, output="sos"
                ),
                noise[i],
            )
            for i, kind in enumerate(("low", "high"))
        )
        tail = low * np.exp(-6.908 * t / self.rt60)
        tail += high * np.exp(-6.908 * t / (self.rt60 * self.hf_ratio))
        build_up = min(max(int(0.01 * SAMPLE_RATE), 1), tail.shape[0])
        tail[:build_up] *= np.linspace(0.0, 1.0, build_up)
        drr = 20.0 * math.log10(self.critical_distance() / distance)
        drr = float(np.clip(drr + rng.normal(0.0, 2.0), *_DRR_RANGE))
        tail *= math.sqrt(10.0 ** (-drr / 10.0) / (np.sum(tail**2) + 1e-20))
        h[start:] += tail

        # The direct path must stay the peak (AddReverb aligns on it).
        rest = float(np.max(np.abs(h)))  # reflections and tail come later
        if rest > 0.8:
            h *= 0.8 / rest
        h[direct] = 1.0
        h *= 0.9
        reverberant = float(np.sum(h**2) - h[direct] ** 2)
        return h, {
            "distance_m": distance,
            "drr_db": 10.0
            * math.log10(h[direct] ** 2 / max(reverberant, 1e-20)),
            "direct_index": direct,
            "rt60_s": self.rt60,
        }
