"""Installs the speechbrain_ssps plug-in (SSPS for SpeechBrain)."""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="speechbrain_ssps",
    version="0.1.0",
    description=(
        "Self-Supervised Positive Sampling (SSPS) with DINO and SimCLR "
        "for SpeechBrain speaker-verification encoders"
    ),
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["speechbrain_ssps", "speechbrain_ssps.*"]),
    # The inference hyperparameters template of speechbrain_ssps.export.
    package_data={"speechbrain_ssps": ["templates/*.yaml"]},
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=[
        "speechbrain>=1.0.0,<2",
        "torch>=2.1",
        "torchaudio>=2.1",
        "hyperpyyaml>=1.2",
        "scikit-learn>=1.0",
        "faiss-cpu>=1.7.4",
        "pandas>=1.5",
        "soundfile>=0.12",
        "scipy>=1.9",
        "numpy>=1.22",
        "matplotlib>=3.5",
    ],
    extras_require={"dev": ["pytest>=7", "ruff>=0.4"]},
)
