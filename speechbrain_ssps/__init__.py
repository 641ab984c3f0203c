"""SSPS (Self-Supervised Positive Sampling) for SpeechBrain.

Self-supervised speaker-verification training with DINO or SimCLR on
SpeechBrain's ECAPA-TDNN, with the positive of each anchor optionally drawn
from another utterance that the model believes is the same speaker
(Lepage & Dehak, Interspeech 2025, arXiv 2505.14561).
"""

__version__ = "0.1.0"
