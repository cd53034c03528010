"""PyAV packet-level work on finished files: read input timestamps without decoding, join same-codec video
segments by copying packets (no re-encode), read back 16-bit alpha segments. A chunked job
(:mod:`vmatte.farm.chunked`) assembles its outputs with these."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from vmatte.errors import Interrupted, OutputError


def input_times(info) -> tuple[list[int], list]:
    """(presentation timestamps of every video frame in ``info.time_base`` ticks, start times in s (Fractions)
    of the first audio stream's packets), read from packets without decoding. Image sequences: pts = index."""
    if info.kind != "video":
        return list(range(info.frame_count)), []
    import av

    video, audio = [], []
    with av.open(info.path) as c:
        streams = [c.streams.video[0], *c.streams.audio[:1]]
        for p in c.demux(*streams):
            if not p.size or p.pts is None:
                continue
            if p.stream.type == "video":
                video.append(p.pts)
            else:
                audio.append(p.pts * p.time_base)
    return sorted(video), sorted(audio)


def _snap(grid: list, t, tolerance_s: float = 0.002):
    """The grid time nearest ``t`` when within ``tolerance_s``, else ``t`` (Fractions in, Fraction out)."""
    import bisect

    if not grid:
        return t
    i = bisect.bisect_left(grid, t)
    near = min(grid[max(0, i - 1) : i + 1], key=lambda g: abs(g - t))
    return near if abs(near - t) <= tolerance_s else t


def concat_segments(
    segments: list[Path],
    final: Path,
    starts_s: list | None = None,
    audio_grid_s: list | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Concatenate video segments (same codec and settings, input timestamps) into ``final`` by copying packets
    (no re-encode). Written under a temp name and renamed.

    ``starts_s``: exact start time (s, Fractions) of each segment's first frame. MOV stores a segment's start
    offset in an edit list in 1/1000 s units, so timestamps read back from a segment can be off by up to 1 ms;
    each segment's video is shifted so its first frame lands exactly on the input's time, and its (copied) audio
    onto the nearest input audio packet time (``audio_grid_s``). Audio packets that two neighbouring segments
    both carry (one straddling a chunk boundary) are kept once."""
    from fractions import Fraction

    import av

    from vmatte.io.atomic import temp_path
    from vmatte.io.writers.common import ensure_folder, oserror, remove_quietly

    ensure_folder(final.parent)
    tmp = temp_path(final)
    opts = {"movflags": "use_metadata_tags"} if final.suffix.lower() in (".mov", ".mp4") else {}
    out = None
    try:
        out = av.open(str(tmp), "w", container_options=opts)
        omap: dict[int, Any] = {}
        layout = None
        last_end: dict[int, Any] = {}
        for n, seg in enumerate(segments):
            with av.open(str(seg)) as c:
                streams = [s for s in c.streams if s.type in ("video", "audio")]
                sig = [(s.type, s.codec_context.name) for s in streams]
                if layout is None:
                    layout = sig
                    for k, v in c.metadata.items():
                        if k.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands"):
                            out.metadata[k] = v
                    for s in streams:
                        o = out.add_stream_from_template(s)
                        if s.type == "video":
                            # the template drops the codec tag: MOV would then write ProRes as 'apch' (422 HQ)
                            # and FFmpeg decode the 4444 alpha stream as 10-bit, so carry the segment's tag
                            _copy_codec_tag(s, o)
                        for k, v in s.metadata.items():
                            if k.lower() not in ("encoder", "handler_name", "vendor_id", "duration"):
                                o.metadata[k] = v
                        omap[s.index] = o
                elif sig != layout:
                    raise OutputError(
                        f"{seg}: streams {sig} differ from the first segment's {layout}",
                        hint="re-render the job",
                    )
                shifts: dict[int, Fraction] = {}
                for st in streams:
                    if st.start_time is None:
                        continue
                    t0 = st.start_time * st.time_base
                    if st.type == "video" and starts_s is not None:
                        shifts[st.index] = Fraction(starts_s[n]) - t0
                    elif st.type == "audio" and audio_grid_s:
                        shifts[st.index] = _snap(audio_grid_s, t0) - t0
                for pkt in c.demux(*streams):
                    if cancel is not None and cancel.is_set():
                        raise Interrupted("cancelled during assembly")
                    if pkt.dts is None and pkt.pts is None:
                        continue  # demuxer flush packet
                    idx = pkt.stream.index
                    shift = shifts.get(idx)
                    if shift:
                        ticks = round(shift / pkt.time_base)
                        if pkt.pts is not None:
                            pkt.pts += ticks
                        if pkt.dts is not None:
                            pkt.dts += ticks
                    if pkt.stream.type == "audio" and pkt.pts is not None:
                        start = pkt.pts * pkt.time_base
                        half = (pkt.duration or 0) * pkt.time_base / 2
                        if n > 0 and idx in last_end and start + half <= last_end[idx]:
                            continue  # already muxed from the previous segment
                        last_end[idx] = start + (pkt.duration or 0) * pkt.time_base
                    pkt.stream = omap[idx]
                    out.mux(pkt)
        out.close()
        out = None
        os.replace(tmp, final)
    except OSError as exc:
        raise oserror(exc, final) from None
    finally:
        if out is not None:
            with contextlib.suppress(Exception):
                out.close()
        if tmp.exists():
            remove_quietly(tmp)


def _copy_codec_tag(src, dst) -> None:
    """Give output stream ``dst`` the codec tag (fourcc, e.g. 'ap4h') of input stream ``src``."""
    tag = src.codec_context.codec_tag
    if tag and tag.isprintable() and len(tag) == 4:
        dst.codec_context.codec_tag = tag


def read_alpha_segments(paths: list[Path]):
    """Yield (H, W) float32 alpha in [0, 1] from 16-bit gray FFV1 segments, in order."""
    import av
    import numpy as np

    from vmatte.io import swscale as sws

    for p in paths:
        with av.open(str(p)) as c:
            for vf in c.decode(video=0):
                yield sws.to_ndarray(vf, format="gray16le").astype(np.float32) * np.float32(1.0 / 65535.0)
