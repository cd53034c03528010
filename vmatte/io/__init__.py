"""Media in and out. Never imports torch (a test checks it).

- :mod:`vmatte.io.decode`: ``open_clip(path) -> Clip`` (video file, image folder or printf pattern);
  ``Clip.frames(start, end, max_corrupt=, corrupt=)`` streams :class:`~vmatte.frame.Frame` objects with their
  demuxed pts; 10/12-bit sources decode to uint16 RGB.
- :mod:`vmatte.io.encode`: ``open_writer(cfg, info, overwrite=, threads=, frame_range=) -> Writer`` with
  ``write(frame)`` / ``close()`` / ``abort()``; ``resolve_output_path``; ``check_output_path``; ``ffmpeg_binary``.
- :mod:`vmatte.io.compose`: ``needs_foreground(cfg)``, ``estimate_foreground(rgb, alpha)`` (decontamination),
  composites over a colour, an image or a clip.
- :mod:`vmatte.io.readback`: ``iter_alpha(path_or_pattern)`` (alpha of any RGBA/matte video or sequence, VP9
  alpha via libvpx), ``iter_rgba``, ``read_alpha_mode``.

Outputs (``OutputConfig.format``; see :mod:`vmatte.io.formats`):

| format     | file        | RGBA pixels                  | matte       | composite   | lossless | audio            |
|------------|-------------|------------------------------|-------------|-------------|----------|------------------|
| prores4444 | .mov        | yuva444p10le (alpha 10 bit)  | yuv444p10le | yuv444p10le | no (DCT) | copy, else AAC   |
| vp9        | .webm       | yuva420p                     | yuv420p     | yuv420p     | no       | Opus (re-encode) |
| qtrle      | .mov        | argb                         | gray        | rgb24       | yes      | copy, else AAC   |
| png-mov    | .mov        | rgba / rgba64be              | gray(16be)  | rgb24/48be  | yes      | copy, else AAC   |
| ffv1       | .mkv        | bgra / gbrap16le             | gray(16le)  | bgr0/gbrp16 | yes      | copy             |
| h264       | .mp4        | (no alpha)                   | yuv420p(10) | yuv420p(10) | no       | copy, else AAC   |
| png        | %0Nd.png    | RGBA 8/16 bit                | gray 8/16   | RGB 8/16    | yes      | -                |
| exr        | %0Nd.exr    | half/float RGBA, LINEAR      | Y channel   | RGB(A=1)    | (half)   | -                |
"""
