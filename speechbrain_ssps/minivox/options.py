"""The options of ``generate_corpus``, named as in Python and on the CLI.

Error messages name an option both ways, e.g. ``num_videos (--videos)``,
so that they help a Python caller and a command-line user alike.

Example
-------
>>> _opt("num_videos")
'num_videos (--videos)'
"""

import numpy as np

# Option names of generate_corpus and their command-line spelling.
_OPTIONS = {
    "num_speakers": "--speakers",
    "num_videos": "--videos",
    "num_utterances": "--utterances",
    "num_test_speakers": "--test-speakers",
    "seed": "--seed",
    "min_duration": "--min-duration",
    "max_duration": "--max-duration",
    "num_trials": "--trials",
    "channel_strength": "--channel-strength",
    "session_variability": "--session-variability",
    "workers": "--workers",
}


def _opt(name: str) -> str:
    """Name an option of ``generate_corpus`` with its command-line flag."""
    return f"{name} ({_OPTIONS[name]})"


def _check_int(name: str, value: int, minimum: int, why: str = "") -> None:
    """Raise a ValueError naming the option when ``value < minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{_opt(name)} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(
            f"{_opt(name)} must be at least {minimum}{why}, got {value}"
        )


def override_options(defaults: dict, overrides: str, option: str) -> dict:
    """``defaults`` with ``key=value,...`` overrides, each value of the type
    of its default; a ValueError naming ``option`` for an unknown key or a
    bad value (the corpus overrides of the demo and the benchmarks).

    Example
    -------
    >>> override_options({"speakers": 20, "duration": 2.0}, "speakers=8", "-c")
    {'speakers': 8, 'duration': 2.0}
    """
    params = dict(defaults)
    for item in filter(None, (overrides or "").split(",")):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in defaults:
            raise ValueError(
                f"{option}: {item!r} is not key=value with a key of "
                f"{sorted(defaults)}"
            )
        try:
            params[key] = type(defaults[key])(value)
        except ValueError:
            raise ValueError(
                f"{option}: {key}={value!r} is not a "
                f"{type(defaults[key]).__name__}"
            ) from None
    return params
