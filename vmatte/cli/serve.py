"""``vmatte serve``: a local HTTP service that keeps the engine loaded, for editor plugins (docs/service.md)."""

from __future__ import annotations

import argparse
import logging
import sys

from vmatte.service import DEFAULT_HOST, DEFAULT_PORT


def register(subs) -> None:
    p = subs.add_parser(
        "serve",
        help="local HTTP service that keeps the engine loaded and runs jobs for editor plugins",
        description="Serve the vmatte API (docs/service.md) on loopback. One engine is loaded once; jobs run one "
        "at a time in a bounded queue. Every endpoint but /v1/health needs 'Authorization: Bearer TOKEN'.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)"
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback (other machines could run jobs on this one's files)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="bearer token (default $VMATTE_TOKEN, else a random one, printed); other users can read a "
        "command line in ps, so prefer VMATTE_TOKEN",
    )
    p.add_argument(
        "--config", metavar="FILE", default=None, help="TOML config whose [engine] table is loaded"
    )
    p.add_argument("--engine", choices=["auto", "vitmatte", "classic"], default=None, help="(default auto)")
    p.add_argument("--model", default=None, help="hub id, local model folder or .pth checkpoint")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default=None)
    p.add_argument("--batch-size", type=int, default=None, metavar="N")
    p.add_argument("--max-queue", type=int, default=16, metavar="N", help="jobs waiting at most (default 16)")
    p.add_argument(
        "--max-body-kb", type=int, default=1024, metavar="KB", help="largest job body accepted (default 1024)"
    )
    p.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        metavar="PID",
        help="stop when process PID ends (plugins that start the service pass their own PID)",
    )
    p.add_argument(
        "--verbose", action="store_true", help="log every job to stderr (failures are logged anyway)"
    )
    p.set_defaults(func=main)


def engine_config(args: argparse.Namespace):
    """The [engine] table of --config, then the engine flags on top (the same schema as ``vmatte run``)."""
    from vmatte.configtools import from_dict, load_toml
    from vmatte.engine.config import EngineConfig

    table = dict(load_toml(args.config).get("engine") or {}) if args.config else {}
    for key in ("engine", "model", "device", "precision", "batch_size"):
        value = getattr(args, key)
        if value is not None:
            table["name" if key == "engine" else key] = value
    return from_dict(EngineConfig, table, source=args.config or "command line", prefix="engine.")


def main(args: argparse.Namespace) -> int:
    from vmatte.errors import UsageError
    from vmatte.service import server

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"vmatte serve needs {exc.name}, which is not installed", hint="pip install 'vmatte[serve]'"
        ) from None
    if args.max_queue < 1 or args.max_body_kb < 1:
        raise UsageError("--max-queue and --max-body-kb must be at least 1")
    warning = server.check_host(args.host, args.allow_remote)
    cfg = engine_config(args)
    token, token_source = server.resolve_token(args.token)
    sock = server.bind(args.host, args.port)  # before loading the model: a busy port fails in a second
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="vmatte serve: %(message)s"
    )
    if warning:
        print(f"vmatte: warning: {warning}", file=sys.stderr)

    from vmatte import load_engine
    from vmatte.service.app import create_app
    from vmatte.service.jobs import JobManager

    engine = load_engine(cfg, on_warning=lambda w: print(f"vmatte: warning: {w}", file=sys.stderr))
    try:
        server.warm_up(engine)
        desc = engine.describe()
        info = {"engine": desc.get("engine", engine.name), "device": str(desc.get("device", "cpu"))}
        if "precision" in desc:
            info["precision"] = desc["precision"]
        manager = JobManager(engine, cfg, max_queue=args.max_queue)
        app = create_app(manager, token, max_body=args.max_body_kb * 1024, engine_info=info)
        url = server.url_of(sock)
        # stdout, one line each, flushed: plugins that start the service read the URL from here
        print(f"vmatte serve: listening on {url} (engine {info['engine']} on {info['device']})", flush=True)
        if token_source == "generated":
            print(f"vmatte serve: token {token}  (send 'Authorization: Bearer {token}')", flush=True)
        else:
            print(f"vmatte serve: token from {token_source}", flush=True)
        server.serve(app, sock, manager, parent_pid=args.parent_pid)
    finally:
        engine.close()
    return 0
