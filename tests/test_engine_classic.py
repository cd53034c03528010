"""Classic engine (closed-form matting on the unknown band) and the CPU path of the CUDA stream runner."""

from __future__ import annotations

import numpy as np
import pytest

from vmatte.engine import EngineConfig, load_engine
from vmatte.engine.classic import CG_FAILED, band_boxes, closed_form, solve_band
from vmatte.frame import Frame
from vmatte.pipeline.libnotes import LibraryNotes
from vmatte.testing import Scene


@pytest.fixture(scope="module")
def soft_frame() -> tuple[Frame, np.ndarray]:
    sc = Scene(width=120, height=90, frames=1, fur=0.3)
    a = sc.alpha(0)
    t = np.full(a.shape, 128, np.uint8)
    t[a <= 0.0] = 0
    t[a >= 1.0] = 255
    return Frame(0, 0, None, sc.rgb(0), trimap=t), a


def test_classic_soft_edge_and_matches_pymatting_on_band(soft_frame):
    from pymatting import estimate_alpha_cf

    frame, truth = soft_frame
    # the band as given (no growth): the solve on it is compared with pymatting's on the same trimap
    eng = load_engine(EngineConfig(name="classic", grow_band=0))
    out = eng.push(frame) + eng.flush()
    alpha = out[0].alpha
    soft = (truth > 0.1) & (truth < 0.9)
    assert soft.sum() > 100
    inside = (alpha[soft] > 0.0) & (alpha[soft] < 1.0)
    assert inside.mean() > 0.95  # a soft edge gets fractional alpha, not a binary cut
    assert float(np.abs(alpha[soft] - truth[soft]).mean()) < 0.15  # and it tracks the true matte
    # solving only inside the band's boxes gives what pymatting gives on the whole frame
    t = frame.trimap.astype(np.float64) / 255.0
    full = estimate_alpha_cf(frame.rgb.astype(np.float64) / 255.0, t)
    band = frame.trimap == 128
    assert float(np.abs(alpha[band] - full[band]).max()) < 1e-3
    assert np.all(alpha[frame.trimap == 0] == 0) and np.all(alpha[frame.trimap == 255] == 1)


def test_band_boxes_cover_every_unknown_pixel_and_merge_close_pieces():
    m = np.zeros((50, 80), bool)
    m[5:8, 5:9] = True
    m[5:8, 11:14] = True  # 3 px from the first piece: merged with margin 4
    m[40:45, 60:70] = True
    boxes = band_boxes(m, margin=4)
    assert len(boxes) == 2
    covered = np.zeros_like(m)
    for y0, y1, x0, x1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert covered[m].all()
    assert covered.sum() < m.size / 3  # boxes hug the band


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # pymatting's cg divides 0 by 0 before it gives up
def test_band_coupled_to_one_label_only_is_solved_not_raised():
    # unknown pixels next to background only, foreground 4 px off in the same box (outside the Laplacian's
    # 2-px reach): pymatting's conjugate gradient raises on this system (right-hand side 0), which stopped a
    # DAVIS run (a 1-px line of foreground among unknown pieces); the answer is background, and it is counted
    rgb = np.random.default_rng(0).random((40, 40, 3))
    tri = np.zeros((40, 40), np.uint8)
    tri[10:13, 10:13] = 128
    tri[10:13, 16:19] = 255
    t = tri.astype(np.float64) / 255.0
    t[tri == 128] = 0.5
    from pymatting import estimate_alpha_cf

    with pytest.raises(ValueError, match="did not converge"):  # the test can fail: the case does provoke it
        estimate_alpha_cf(rgb, t)
    notes = LibraryNotes()
    alpha = solve_band(rgb, tri, notes=notes)
    assert np.all(alpha[tri == 128] == 0) and np.all(alpha[tri == 255] == 1)
    assert len(taken := notes.take()) == 1 and "did not converge" in taken[0] and "1 time" in taken[0]


def test_direct_solve_matches_pymatting_where_both_work(soft_frame, monkeypatch):
    frame, _ = soft_frame
    img = frame.rgb.astype(np.float64) / 255.0
    t = frame.trimap.astype(np.float64) / 255.0
    t[frame.trimap == 128] = 0.5
    cg = closed_form(img, t)
    import pymatting

    def give_up(*a, **k):
        raise ValueError(CG_FAILED)

    monkeypatch.setattr(pymatting, "estimate_alpha_cf", give_up)
    notes = LibraryNotes()
    direct = closed_form(img, t, notes)
    assert notes.take()  # it did take the direct path
    band = frame.trimap == 128
    assert float(np.abs(direct[band] - cg[band]).max()) < 1e-3


def test_solve_band_without_known_pixels_is_neutral():
    rgb = np.random.default_rng(0).random((20, 20, 3))
    t = np.full((20, 20), 128, np.uint8)
    assert np.all(solve_band(rgb, t) == 0.5)


def test_device_runner_cpu_recycles_buffers_in_order():
    torch = pytest.importorskip("torch")
    from vmatte.engine.cuda import DeviceRunner

    r = DeviceRunner("cpu")
    tickets, inputs = [], set()
    for k in range(3):
        buf = r.host_buffer((2, 4, 5, 4))
        inputs.add(buf.data_ptr())
        buf.fill_(k)
        tickets.append(r.submit(buf, lambda x: x[..., 0].float() * 2))
    results = [r.wait(t) for t in tickets]
    assert [float(a[0, 0, 0]) for a in results] == [0.0, 2.0, 4.0]
    assert all(a.shape == (2, 4, 5) and a.dtype == np.float32 for a in results)
    # on the CPU a buffer is free again as soon as its batch ran: one input buffer serves every batch
    assert len(inputs) == 1
    again = r.host_buffer((2, 4, 5), torch.float32)
    assert again.data_ptr() in {t.out_host.data_ptr() for t in tickets}  # outputs are recycled too
    assert r.compute_s >= 0 and r.batches == 3
