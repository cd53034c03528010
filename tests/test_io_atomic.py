"""The one temporary-name rule (vmatte.io.atomic): names, atomic writes, and whose temporaries a cleanup removes."""

from __future__ import annotations

import os

import pytest

from vmatte.io.atomic import remove_own_temporaries, temp_path, temp_prefix, write_text_atomic


def test_temp_name_is_a_hidden_sibling_with_the_extension(tmp_path):
    final = tmp_path / "shot.matte.mov"
    t = temp_path(final)
    assert t.parent == tmp_path and t.suffix == ".mov" and t.name.startswith(temp_prefix(final))
    assert t.name == f".shot.matte.vmatte-tmp-{os.getpid()}.mov"
    assert temp_path(final, "7").name == f".shot.matte.vmatte-tmp-{os.getpid()}-7.mov"


def test_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    write_text_atomic(target, "old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_cleanup_removes_only_this_process_temporaries(tmp_path):
    pid = os.getpid()
    mine = [tmp_path / f".a.vmatte-tmp-{pid}.mov", tmp_path / f".b.vmatte-tmp-{pid}-3.json"]
    theirs = [tmp_path / f".a.vmatte-tmp-{pid}1.mov", tmp_path / ".a.vmatte-tmp-1.mov", tmp_path / "a.mov"]
    for p in mine + theirs:
        p.write_bytes(b"x")
    remove_own_temporaries([tmp_path, tmp_path / "missing"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in theirs)
