"""Bad keyframe mask folders: each is refused with exit 4 and ONE line naming the file and the fix, or accepted
(with a warning line where the issue says so). Checked before any model loads: the engine is never built for
a refused folder, and nothing is written.
"""

from __future__ import annotations

import json

import hostile as h
import pytest


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The 64x48, 8-frame clip every mask folder is tried against."""
    return h.good_mp4(tmp_path_factory.mktemp("clip") / "clip.mp4")


class _Trip:
    """An engine factory that records whether the runner asked for a model (it must not, for bad masks)."""

    def __init__(self) -> None:
        self.loaded = False


@pytest.mark.parametrize("case", h.MASKS, ids=[c.name for c in h.MASKS])
def test_hostile_masks(case: h.HostileMasks, clip, tmp_path, monkeypatch):
    masks = case.make(tmp_path)
    out = tmp_path / "out" / "matte.mov"
    report = tmp_path / "report.json"
    guarded = {clip: h.sha(clip)}
    if masks.exists():
        guarded[masks] = h.sha(masks)

    import vmatte.engine as eng
    from vmatte.engine.base import FakeEngine

    trip = _Trip()

    def load(*a, **k):
        trip.loaded = True
        return FakeEngine(batch_size=2)

    monkeypatch.setattr(eng, "load_engine", load, raising=False)
    res = h.run_cli("run", clip, "--masks", masks, "-o", out, "--report", report, "--progress", "none")

    if case.exit:
        h.assert_one_error_line(res, case.exit, case.culprit, *case.fix)
        assert not trip.loaded, "a model was loaded before the masks were validated"
        h.assert_nothing_left(out, before=guarded)
        rep = json.loads(report.read_text())
        assert rep["exit_code"] == case.exit and not rep["retryable"]
        return
    assert res.code == 0, str(res)
    assert "Traceback" not in res.stderr and not res.errors, str(res)
    assert out.exists() and h.leftovers(out.parent) == []
    for p, digest in guarded.items():
        assert h.sha(p) == digest, f"{p} was modified"
    if case.warn:
        warned = [ln for ln in res.lines if ln.startswith("vmatte: warning:") and case.warn in ln]
        assert len(warned) == 1, f"expected one warning line containing {case.warn!r}: {res}"


def test_mask_errors_carry_a_hint(clip, tmp_path):
    """At the API level every refused folder raises MaskError (exit 4, not retryable) with a non-empty hint."""
    from vmatte.errors import MaskError
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes

    info = open_clip(clip).info
    refused = [c for c in h.MASKS if c.exit]
    for case in refused:
        d = tmp_path / case.name
        d.mkdir()
        with pytest.raises(MaskError) as ei:
            load_keyframes(case.make(d), info)
        assert ei.value.exit_code == 4 and not ei.value.retryable
        assert ei.value.hint, f"{case.name}: no fix given: {ei.value}"
        assert "\n" not in str(ei.value), f"{case.name}: message is not one line"
