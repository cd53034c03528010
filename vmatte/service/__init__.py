"""``vmatte serve``: a local HTTP service that keeps one engine loaded and runs jobs for editor plugins.

    jobs.py    Job and JobManager: a bounded queue, one worker thread per device (the engine), cancel events
    app.py     the Starlette app: /v1/health, /v1/jobs (POST, GET), /v1/jobs/{id} (GET, DELETE), .../events (SSE)
    server.py  token, host checks, socket binding, uvicorn (in the main thread for the CLI, a thread for tests)

A job body is the run config as JSON, the same keys as a TOML config file (``input``, ``masks``, ``outputs``,
``frames``, ``propagate`` ...); it is composed and validated by :func:`vmatte.config.build_config`, run by
:func:`vmatte.run` with the loaded engine, and reports progress with the same event dicts as
``--progress json``. See docs/service.md. Importing this package does not import starlette or uvicorn.
"""

API_VERSION = "v1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8731
