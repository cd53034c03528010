"""Run the service: token, host policy, socket, uvicorn. The CLI serves in the main thread (uvicorn handles
SIGINT/SIGTERM: running jobs are cancelled and cleaned up as on Ctrl-C); tests and the load script use
:class:`ServiceThread`."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import sys
import threading

from vmatte.errors import UsageError
from vmatte.service.jobs import JobManager


def resolve_token(given: str | None) -> tuple[str, str]:
    """(token, where it came from): ``--token``, else ``$VMATTE_TOKEN``, else a fresh random one."""
    if given:
        return given, "--token"
    env = os.environ.get("VMATTE_TOKEN", "")
    if env:
        return env, "VMATTE_TOKEN"
    return secrets.token_urlsafe(24), "generated"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        return False


def check_host(host: str, allow_remote: bool) -> str | None:
    """Refuse a non-loopback host unless ``allow_remote``; then return the warning to print (else None)."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise UsageError(
            f"--host {host} is not a loopback address: other machines could submit jobs that read and write "
            "files here",
            hint="serve on 127.0.0.1 (the default), or add --allow-remote if you mean it",
        )
    return (
        f"serving on {host}: anyone who can reach this port and has the token can run jobs on this machine's "
        "files; the traffic (token included) is not encrypted"
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 = any free port); a port in use is a one-line UsageError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            hint="is another vmatte serve running there? choose another --port",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app, *, log_level: str = "warning"):
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # open SSE streams must not hold a shutdown forever
        timeout_graceful_shutdown=2,
    )

    class Server(uvicorn.Server):
        """uvicorn's server that remembers the first signal it stopped for (``stopped_by``, None if none)."""

        stopped_by: int | None = None

        def handle_exit(self, sig, frame) -> None:
            if self.stopped_by is None:
                self.stopped_by = sig
            super().handle_exit(sig, frame)

    return Server(config)


def warm_up(engine, size: int = 96) -> float:
    """Matte one small synthetic frame so the first job does not pay one-off costs (pymatting's JIT compile,
    CUDA kernel selection). Returns the seconds it took."""
    import time

    import numpy as np

    from vmatte.frame import Frame

    t = time.perf_counter()
    yy, xx = np.mgrid[0:size, 0:size]
    dist = np.hypot(yy - size / 2, xx - size / 2)
    trimap = np.where(dist < size / 4, 255, 0).astype(np.uint8)
    trimap[np.abs(dist - size / 4) < 4] = 128
    rgb = np.dstack([trimap, 255 - trimap, np.full_like(trimap, 90)]).astype(np.uint8)
    engine.push(Frame(index=0, pts=None, time_base=None, rgb=rgb, trimap=trimap))
    engine.flush()
    return time.perf_counter() - t


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def serve(app, sock: socket.socket, manager: JobManager, parent_pid: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM, or until process ``parent_pid`` ends (a plugin that started the service and
    then crashed must not leave it holding the model). The app's lifespan cancels jobs (their temporaries are
    removed) on the way out. After a signal the exit code is 130 (SIGINT) or 143 (SIGTERM), decided here: uvicorn
    re-raises the signal into asyncio.run's own SIGINT handler, which turns it into KeyboardInterrupt only when
    its cancel reaches the main task in time (the tests saw the process exit 0 instead)."""
    server = make_server(app)
    if parent_pid:

        def watch() -> None:
            while not server.should_exit:
                if not pid_alive(parent_pid):
                    print(f"vmatte serve: process {parent_pid} ended, stopping", file=sys.stderr, flush=True)
                    server.should_exit = True
                    return
                threading.Event().wait(1.0)

        threading.Thread(target=watch, name="vmatte-serve-parent", daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        if server.stopped_by is None:
            raise  # Ctrl-C before uvicorn took the signals
    finally:
        manager.shutdown()
        sock.close()
    if server.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt  # the CLI's exit 130
    if server.stopped_by == signal.SIGTERM:
        raise SystemExit(143)


class ServiceThread:
    """uvicorn in a background thread on a loopback socket (tests, load script). ``url``, ``stop()``."""

    def __init__(self, app, manager: JobManager, host: str = "127.0.0.1", port: int = 0) -> None:
        self.manager = manager
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        self.server = make_server(app)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="vmatte-serve-http", daemon=True
        )
        self.thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.manager.shutdown()
        self.thread.join(timeout_s)
        with contextlib.suppress(OSError):
            self.sock.close()
