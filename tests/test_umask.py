"""Atomically written artefacts follow the process umask, like plain writes (cp, save_pretrained)."""

from __future__ import annotations

import os
import stat

import pytest

from tfslm.atomic import atomic_directory, atomic_write_text


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_atomic_outputs_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    previous = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "file.txt", "x")
        with atomic_directory(tmp_path / "model") as tmp:
            (tmp / "weights").write_text("y")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "file.txt").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "model" / "weights").stat().st_mode) == file_mode
