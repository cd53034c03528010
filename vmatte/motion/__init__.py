"""Motion between frames, owned in one place: dense DIS optical flow and its presets, forward-backward
consistency, the subject's own motion, the keypoint fallback for large displacements, scene cuts, and the
per-run store that lets propagation, alpha feedback and smoothing share one flow per frame pair.

- :mod:`vmatte.motion.flow`: DIS presets, working resolution, :class:`~vmatte.motion.flow.FlowPair` (both
  directions + consistency), :func:`~vmatte.motion.flow.subject_motion`.
- :mod:`vmatte.motion.shared`: :class:`~vmatte.motion.shared.MotionStore` (bounded: a few grey frames and
  consecutive-pair flows) and :class:`~vmatte.motion.shared.FrameMotion`, carried on ``Frame.motion``.
- :mod:`vmatte.motion.keypoint`: ORB + RANSAC bulk motion where DIS fails.
- :mod:`vmatte.motion.scenecut`: the histogram scene-cut detector.
- :mod:`vmatte.motion.config`: the ``[flow]`` options (schema only).

Importing this package loads nothing heavy; the submodules import OpenCV.
"""
