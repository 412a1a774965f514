"""The public API is a contract: ``tfslm.__all__`` and every public callable's signature, snapshotted.

A change here is a change for every user script: when it is meant, regenerate
the snapshot with ``TFSLM_UPDATE_API=1 python -m pytest tests/test_public_api.py``
and say so in the release notes.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest

import tfslm

SNAPSHOT = Path(__file__).with_name("public_api.json")


def _describe(value) -> dict:
    if inspect.isclass(value):
        out = {"kind": "class"}
        try:
            out["signature"] = str(inspect.signature(value))
        except (TypeError, ValueError):
            out["signature"] = None
        methods = {}
        for name, raw in sorted(vars(value).items()):
            if not name.startswith("_") and (inspect.isfunction(raw) or isinstance(raw, (classmethod, staticmethod))):
                methods[name] = str(inspect.signature(getattr(value, name)))
        if methods:
            out["methods"] = methods
        return out
    if callable(value):
        return {"kind": "function", "signature": str(inspect.signature(value))}
    return {"kind": type(value).__name__}


def _current() -> dict:
    return {name: _describe(getattr(tfslm, name)) for name in sorted(tfslm.__all__)}


def test_public_api_matches_the_snapshot():
    current = _current()
    if os.environ.get("TFSLM_UPDATE_API"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    added, removed = sorted(set(current) - set(expected)), sorted(set(expected) - set(current))
    assert not added and not removed, f"tfslm.__all__ changed: added {added}, removed {removed}"
    changed = {name: (expected[name], current[name]) for name in current if current[name] != expected[name]}
    assert not changed, "public signatures changed:\n" + "\n".join(f"{n}:\n  was {a}\n  now {b}" for n, (a, b) in changed.items())


def test_every_name_in_all_resolves_and_dir_lists_them():
    for name in tfslm.__all__:
        assert getattr(tfslm, name) is not None, name
    assert set(tfslm.__all__) <= set(dir(tfslm))


@pytest.mark.parametrize("name", ["PreparedData", "Distribution", "InputData", "RunDir", "TrainResult", "Predictor", "Performance", "Backend"])
def test_types_that_public_functions_return_are_exported(name):
    assert name in tfslm.__all__ and inspect.isclass(getattr(tfslm, name))


def test_public_callables_have_docstrings_with_an_example():
    missing = []
    for name in tfslm.__all__:
        value = getattr(tfslm, name)
        if not callable(value) or name in ("__version__",):
            continue
        doc = inspect.getdoc(value) or ""
        if not doc.strip():
            missing.append(f"{name}: no docstring")
        elif inspect.isfunction(value) and ">>>" not in doc and "Example" not in doc:
            missing.append(f"{name}: no example")
    assert not missing, "\n".join(missing)
