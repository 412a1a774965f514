"""Where commands write: atomic outputs follow the umask, leftovers of killed writers go, run files are never a destination."""

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


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "scored.csv"
    # A writer killed mid-write leaves its temporary; its pid is dead afterwards.
    code = (
        "import os, sys; from tfslm.atomic import atomic_file\n"
        f"with atomic_file({str(target)!r}) as h:\n"
        "    h.write('partial'); h.flush(); os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    leftovers = list(tmp_path.glob(".scored.csv.*.tmp"))
    assert len(leftovers) == 1 and not target.exists()
    unrelated = tmp_path / ".scored.csv.notes.tmp"  # not one of ours (no pid): kept
    unrelated.write_text("mine")
    atomic_write_text(target, "done")
    assert target.read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["scored.csv", unrelated.name])


def test_export_destinations(tmp_path):
    from tfslm.destinations import check_output_dir
    from tfslm.errors import RunDirError

    run = tmp_path / "runs" / "x"
    (run / "model").mkdir(parents=True)
    (run / "saved_model" / "assets.extra").mkdir(parents=True)
    (run / "saved_model" / "assets.extra" / "tfslm_export.json").write_text("{}")
    (run / "saved_model" / "saved_model.pb").write_text("")
    (run / "config.yaml").write_text("")
    check = lambda path, **kw: check_output_dir(path, run_dir=run, allowed_in_run=("saved_model",), **{"overwrite": False, **kw})  # noqa: E731
    assert check(run / "saved_model") == (run / "saved_model").resolve()  # the run's own export: replaced in place
    for bad, fragment in [(run, "is or holds the run directory"), (tmp_path, "is or holds the run directory"),
                          (run / "model", "run's own model"), (run / "model" / "sm", "run's own model"),
                          (run / "config.yaml", "not a directory")]:
        with pytest.raises(RunDirError, match=fragment):
            check(bad, overwrite=True)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not empty and not written by tfslm; pass --overwrite"):
        check(user)
    assert check(user, overwrite=True) == user.resolve()
    (user / "notes.txt").unlink()
    assert check(user) == user.resolve()  # empty: fine
    assert check(tmp_path / "new" / "dir") == (tmp_path / "new" / "dir").resolve()
    with pytest.raises(RunDirError, match="is a file, not a directory"):
        check(run / "config.yaml" / "sm")


def test_file_destinations(tmp_path):
    from tfslm.destinations import check_output_file
    from tfslm.errors import RunDirError

    run = tmp_path / "run"
    (run / "evaluations").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    source = tmp_path / "in.csv"
    source.write_text("text\n")
    with pytest.raises(RunDirError, match="is also the input file"):
        check_output_file(source, overwrite=True, inputs=[source])
    with pytest.raises(RunDirError, match="run's own metrics.json"):
        check_output_file(run / "metrics.json", overwrite=True, run_dir=run, allowed_in_run=("evaluations",))
    with pytest.raises(RunDirError, match="is a directory"):
        check_output_file(run / "evaluations", overwrite=True)
    existing = tmp_path / "out.csv"
    existing.write_text("old")
    with pytest.raises(RunDirError, match="exists; pass --overwrite"):
        check_output_file(existing, overwrite=False)
    assert check_output_file(existing, overwrite=True) == existing.resolve()
    assert check_output_file(run / "evaluations" / "x.json", overwrite=False, run_dir=run, allowed_in_run=("evaluations",))


def test_full_or_read_only_destinations_are_named_in_one_line():
    import errno

    from tfslm.errors import storage_problem

    full = OSError(errno.ENOSPC, "No space left on device", "/data/runs/x/model/tf_model.h5")
    assert storage_problem(full).startswith("/data/runs/x/model/tf_model.h5: no space left; free space there")
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/ro/run")
        except OSError as inner:
            raise RuntimeError("Unable to create file (unable to open file)") from inner
    except RuntimeError as wrapped:
        assert storage_problem(wrapped).startswith("/ro/run: read-only file system; make it writable")
    assert "no space left" in storage_problem(RuntimeError("Can't write data (file write failed: errno = 28, No space left on device)"))
    assert storage_problem(ValueError("bad value")) is None


@pytest.fixture
def small_disk(tmp_path):
    """A 1.2 MiB tmpfs (root only): room for a tiny run's backup but not for its SavedModel."""
    import shutil
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_and_the_run_resumes_after_space_is_freed(small_disk, tmp_path):
    import subprocess
    import sys

    import yaml

    from conftest import make_rows, tiny_config_dict, write_csv

    train = write_csv(tmp_path / "train.csv", make_rows(120, seed=1))
    cfg = tiny_config_dict(tmp_path, train, training={"epochs": 2})
    cfg["output_dir"] = str(small_disk / "runs")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    command = [sys.executable, "-m", "tfslm.cli", "train", str(config), "--verbose", "0"]
    full = subprocess.run(command, capture_output=True, text=True, timeout=300)
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 1, full.stderr[-2000:]
    assert lines[-1].startswith(f"tfslm: error: {small_disk / 'runs' / 'tiny'}: no space left; free space there")
    assert "Traceback" not in full.stderr
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "tfslm: resuming " in again.stderr  # from the backup the full disk left, not from scratch
    assert (small_disk / "runs" / "tiny" / "metrics.json").is_file()
