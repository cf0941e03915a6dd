"""The call flows' pure rules, through the examples in their docstrings (hold and help
times, presence spans, wrap-up sections, complaint changes, who may play a recording, the
Japanese readings and durations of prompts, the recording notice)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("service.callflows.handraise", "service.callflows.complaints",
           "service.callflows.presence", "service.callflows.recordings",
           "service.dialplan.prompts", "service.routing.policy", "agi.identifiers")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, name
    assert result.failed == 0, name
