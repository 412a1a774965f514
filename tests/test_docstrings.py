"""Docstring examples run: every module of the tfslm package through ``doctest``.

Examples that need a model, data or a run directory carry ``# doctest: +SKIP``;
the others are cheap and must print what they say. Modules are found by
walking the package, so a new module is covered without editing this file.

``KNOWN_FAILURES`` lists docstrings whose examples fail today (issue 10, item 6):
they are skipped here until their examples are fixed; then delete the entry
(the list should end up empty).
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import tfslm

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# (module, docstring name) -> why it fails
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

MODULES = ["tfslm"] + sorted(m.name for m in pkgutil.walk_packages(tfslm.__path__, "tfslm."))


def _doctests(module_name: str):
    module = importlib.import_module(module_name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, module_name) if t.examples]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    failures = []
    for test in _doctests(module_name):
        if (module_name, test.name) in KNOWN_FAILURES:
            continue
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        report = io.StringIO()
        result = runner.run(test, out=report.write, clear_globs=True)
        if result.failed:
            failures.append(report.getvalue())
    assert not failures, "\n".join(failures)


def test_the_examples_are_found():
    """Guards the test above against finding nothing (e.g. a package walk that stopped)."""
    assert {"tfslm.atomic", "tfslm.tasks.metrics", "tfslm.serving.predictor", "tfslm.publish.report"} <= set(MODULES)
    assert any(not e.options.get(doctest.SKIP) for t in _doctests("tfslm.tasks.metrics") for e in t.examples)
