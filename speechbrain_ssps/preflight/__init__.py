"""Start-up checks of a run's inputs: the manifest, its audio, the options.

A bad file or option should stop a run before the first step, with a
message naming the file, the CSV line or the command-line option at fault,
not hours into an epoch. Two entry points:

* :func:`check_manifest` (:mod:`~speechbrain_ssps.preflight.manifest`)
  reads the CSV with the same rules as ``DynamicItemDataset.from_csv`` and
  checks every row and every audio header
  (:mod:`~speechbrain_ssps.preflight.audio`, in a thread pool); all
  problems are reported in one :class:`ManifestError`.
* :func:`check_training_options`
  (:mod:`~speechbrain_ssps.preflight.options`) checks batch size, epochs and
  the SSPS start against each other and the size of the training set;
  :func:`check_run_precision` stops a ``--precision`` the device lacks.

Example
-------
>>> from speechbrain_ssps.preflight import check_training_options
>>> check_training_options(num_utterances=100, batch_size=10,
...                        number_of_epochs=5)
"""

from speechbrain_ssps.preflight.audio import FLOAT_SUBTYPES
from speechbrain_ssps.preflight.manifest import (
    MAX_LISTED,
    ManifestError,
    ManifestReport,
    check_manifest,
)
from speechbrain_ssps.preflight.options import (
    check_precision,
    check_run_precision,
    check_training_options,
)

__all__ = [
    "FLOAT_SUBTYPES",
    "MAX_LISTED",
    "ManifestError",
    "ManifestReport",
    "check_manifest",
    "check_precision",
    "check_run_precision",
    "check_training_options",
]
