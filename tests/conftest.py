"""Shared pytest fixtures (SpeechBrain style: a ``--device`` option)."""

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--device", action="store", default="cpu", help="torch device"
    )


@pytest.fixture
def device(request):
    return request.config.getoption("--device")
