"""tfslm.atomic: a write either lands whole or leaves the old file/directory as it was, with no leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfslm import atomic
from tfslm.atomic import atomic_directory, atomic_file, atomic_write_json, atomic_write_text


class Boom(Exception):
    pass


def _listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- files
def test_atomic_file_creates_missing_parents_and_writes(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    with atomic_file(target) as handle:
        handle.write("línea 1\nline 2\n")
        assert not target.exists(), "the target must not appear before the block ends"
    assert target.read_text(encoding="utf-8") == "línea 1\nline 2\n"
    assert _entries(target.parent) == ["out.txt"]


def test_atomic_file_binary_mode(tmp_path):
    target = tmp_path / "blob.bin"
    with atomic_file(target, "wb") as handle:
        handle.write(b"\x00\xffdata")
    assert target.read_bytes() == b"\x00\xffdata"


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_atomic_file_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, error):
    target = tmp_path / "metrics.json"
    target.write_text("old contents", encoding="utf-8")
    with pytest.raises(error):
        with atomic_file(target) as handle:
            handle.write("half of the new contents")
            raise error()
    assert target.read_text(encoding="utf-8") == "old contents"
    assert _entries(tmp_path) == ["metrics.json"]


def test_atomic_file_failure_without_an_old_file_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        with atomic_file(tmp_path / "new.csv") as handle:
            handle.write("a,b\n")
            raise Boom()
    assert _entries(tmp_path) == []


def test_atomic_file_replaces_an_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with atomic_file(target) as handle:
        handle.write("new")
    assert target.read_text(encoding="utf-8") == "new"
    assert _entries(tmp_path) == ["out.txt"]


def test_atomic_write_text_and_json(tmp_path):
    atomic_write_text(tmp_path / "t.txt", "olá\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "olá\n"
    data = {"b": 1, "a": [1.5, "ção"], "nested": {"x": None}}
    atomic_write_json(tmp_path / "d.json", data)
    text = (tmp_path / "d.json").read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert list(json.loads(text)) == ["b", "a", "nested"], "keys keep their order"
    assert "ção" in text and text.endswith("}\n")


def test_atomic_write_json_unserialisable_keeps_the_old_file(tmp_path):
    target = tmp_path / "d.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text(encoding="utf-8")) == {"ok": True}
    assert _entries(tmp_path) == ["d.json"]


# ---------------------------------------------------------------- directories
def test_atomic_directory_creates_a_new_directory(tmp_path):
    target = tmp_path / "runs" / "model"
    with atomic_directory(target) as tmp:
        assert tmp.is_dir() and tmp.parent == target.parent and tmp != target
        (tmp / "weights.h5").write_bytes(b"w")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "vocab.txt").write_text("a\n")
        assert not target.exists()
    assert _listing(target) == {"sub/vocab.txt": b"a\n", "weights.h5": b"w"}
    assert _entries(target.parent) == ["model"]


def test_atomic_directory_replaces_an_existing_directory(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "stale.txt").write_text("from an earlier export")
    (target / "saved_model.pb").write_bytes(b"old")
    with atomic_directory(target) as tmp:
        (tmp / "saved_model.pb").write_bytes(b"new")
    assert _listing(target) == {"saved_model.pb": b"new"}, "the old directory's files must be gone"
    assert _entries(tmp_path) == ["saved_model"], "no temporary or old sibling left"


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_atomic_directory_failure_keeps_the_old_directory(tmp_path, error):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text('{"old": true}')
    before = _listing(target)
    with pytest.raises(error):
        with atomic_directory(target) as tmp:
            (tmp / "config.json").write_text('{"new": true}')
            (tmp / "half.h5").write_bytes(b"\x00" * 100)
            raise error()
    assert _listing(target) == before
    assert _entries(tmp_path) == ["model"]


def test_atomic_directory_failure_without_an_old_directory_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        with atomic_directory(tmp_path / "model") as tmp:
            (tmp / "x").write_text("x")
            raise Boom()
    assert _entries(tmp_path) == []


def test_atomic_directory_replaces_where_the_os_cannot_exchange(tmp_path, monkeypatch):
    """Without an atomic exchange (not Linux), the old directory is moved aside, then removed."""
    if not hasattr(atomic, "_exchange"):
        pytest.skip("tfslm.atomic no longer has the _exchange seam this test replaces")
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _listing(target) == {"new.txt": b"new"}
    assert _entries(tmp_path) == ["model"]
