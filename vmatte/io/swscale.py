"""Pixel-format conversion (swscale through PyAV), always single-threaded: every conversion in vmatte goes here.

Why: PyAV's ``VideoFrame.reformat`` / ``to_ndarray`` default to ``threads=0`` (one swscale slice per core), and
the FFmpeg 8.1 libswscale 9.5 in the PyAV 18.1 wheel then writes wrong values into the first 8 pixels of a row
at a slice seam at many frame sizes. Measured (widths 100..400, heights 16/17/34, 2 threads vs 1): rgba64le→
yuva444p10le (the default ProRes 4444 writer; alpha 0 became 512/1023 ≈ 0.5), rgb48le→yuv444p10le, rgba→argb
/bgra (qtrle, ffv1), rgba→yuva420p (VP9), and on the read side yuva444p12le/yuv444p12le/yuv420p10le→rgb;
only 8-bit yuv420p→rgb24 was unaffected. This was the "stray alpha at x = 0..7" blamed on ProRes frame
threading: with single-threaded conversion the frame-threaded ``prores_ks`` encoder is exact at every size
tried (tests/test_io_alpha_sizes.py, scripts/sweep_alpha_sizes.py). A 1080p rgba64le→yuva444p10le conversion
is ~20 ms CPU with one thread or two; VideoWriter converts up to 4 frames side by side, so the writer thread's
serial share stays below the old layout's (scripts/bench_encoders.py --prores-layouts).
"""

from __future__ import annotations

SWS_THREADS = 1  # never 0 (auto): see the module docstring


def reformat(vf, **kwargs):
    """``vf.reformat(**kwargs)`` with single-threaded swscale (same arguments as PyAV's)."""
    kwargs["threads"] = SWS_THREADS
    return vf.reformat(**kwargs)


def to_ndarray(vf, **kwargs):
    """``vf.to_ndarray(**kwargs)`` with single-threaded swscale: (H, W, C) or (H, W) numpy array."""
    kwargs["threads"] = SWS_THREADS
    return vf.to_ndarray(**kwargs)
