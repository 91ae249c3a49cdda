"""The behavioural layer's docstring examples are tests (river's convention)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["actions", "baseline", "drift", "indicators", "pipeline", "session", "suggest", "testing"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"detectors.behavior.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module.__name__} failed"
