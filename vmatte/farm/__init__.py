"""Render-farm support: chunk plans, checksummed manifests, resumable chunked runs, Ray.

- :mod:`vmatte.farm.plan`: ``plan_job(config, chunk_size, command=...)`` → :class:`~vmatte.farm.plan.Plan`
  (chunks, the context each needs, the command line per chunk); ``vmatte plan`` prints it.
- :mod:`vmatte.farm.manifest`: per-chunk records with sha256 checksums; what counts as finished.
- :mod:`vmatte.farm.chunked`: ``run_chunked(config, chunk_size, engine=..., resume=...)`` (``vmatte run --chunk``).
- :mod:`vmatte.farm.ray_runner`: ``run_ray(config, chunk_size, address=..., num_cpus=...)`` (``vmatte run --ray``).

Importing this package imports neither Ray nor torch. See docs/farm.md.
"""
