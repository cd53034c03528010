"""A small client for ``vmatte serve`` (docs/service.md), standard library only: Blender's Python has no
third-party HTTP stack and cannot import vmatte (torch, av). Nothing here imports bpy.

    service = Service(url, token)
    service.ensure_running(command="vmatte", engine="auto")   # starts `vmatte serve` if none answers
    job_id = service.submit({"input": ..., "masks": ..., "outputs": [...]})
    service.job(job_id)   # {"status": ..., "progress": {...}, "report": {...}, "error": {...}}
    service.cancel(job_id)
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shlex
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

FINISHED = ("ok", "error", "cancelled")


class ServiceError(Exception):
    """The service refused a request or could not be reached; ``str()`` is one line for the UI."""


class Service:
    def __init__(self, url: str, token: str = "", timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token = token or os.environ.get("VMATTE_TOKEN", "")
        self.timeout_s = timeout_s
        self.process: subprocess.Popen | None = None
        self.log_path = ""

    # -- HTTP -------------------------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: dict | None = None, auth: bool = True
    ) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {"error": exc.reason}
            return exc.code, payload
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceError(f"vmatte serve at {self.url} did not answer ({reason})") from None

    def health(self) -> dict | None:
        """The health object, or None when nothing answers."""
        try:
            status, body = self.request("GET", "/v1/health", auth=False)
        except ServiceError:
            return None
        return body if status == 200 else None

    def submit(self, config: dict) -> str:
        status, body = self.request("POST", "/v1/jobs", config)
        if status == 401:  # e.g. a service left running by an earlier session, with another token
            raise ServiceError(
                f"vmatte serve at {self.url} refused the token: set the add-on's Token to the one it printed "
                "at start (or its VMATTE_TOKEN), or stop that service"
            )
        if status != 201:
            raise ServiceError(body.get("error") or f"job refused (HTTP {status})")
        return body["id"]

    def job(self, job_id: str) -> dict:
        status, body = self.request("GET", f"/v1/jobs/{urllib.parse.quote(job_id)}")
        if status != 200:
            raise ServiceError(body.get("error") or f"HTTP {status}")
        return body

    def cancel(self, job_id: str) -> dict:
        """Cancel; returns the job (already finished jobs come back as they are)."""
        status, body = self.request("DELETE", f"/v1/jobs/{urllib.parse.quote(job_id)}")
        if status == 409:
            return self.job(job_id)
        if status not in (200, 202):
            raise ServiceError(body.get("error") or f"HTTP {status}")
        return body

    # -- starting a service -------------------------------------------------------------------------------------
    def ensure_running(
        self, command: str = "vmatte", engine: str = "auto", start_timeout_s: float = 120.0
    ) -> bool:
        """Start ``COMMAND serve`` on this URL's host and port unless a service answers already (then its token
        must be ours). Returns True if it started one. The started process ends when Blender exits."""
        if self.health() is not None:
            return False
        parsed = urllib.parse.urlparse(self.url)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ServiceError(f"no vmatte serve answers at {self.url}, and only a local one can be started")
        if not self.token:
            self.token = secrets.token_urlsafe(24)
        argv = [*shlex.split(command), "serve", "--host", parsed.hostname, "--port", str(parsed.port or 8731)]
        if engine:
            argv += ["--engine", engine]
        argv += ["--parent-pid", str(os.getpid())]  # it stops by itself if Blender crashes
        env = {**os.environ, "VMATTE_TOKEN": self.token}
        with tempfile.NamedTemporaryFile("w", prefix="vmatte-serve-", suffix=".log", delete=False) as log:
            self.log_path = log.name
            try:
                self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            except OSError as exc:
                raise ServiceError(
                    f"cannot start '{command}' ({exc.strerror or exc}): set the vmatte command in the add-on's "
                    "preferences"
                ) from None
        atexit.register(self.stop)
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"vmatte serve exited ({self.process.returncode}): {self._log_tail()}")
            if self.health() is not None:
                return True
            time.sleep(0.25)
        self.stop()
        raise ServiceError(f"vmatte serve did not answer within {start_timeout_s:.0f} s: {self._log_tail()}")

    def stop(self) -> None:
        """End a service this client started (jobs are cancelled and clean up, as on Ctrl-C)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                lines = [ln.strip() for ln in fh if ln.strip()]
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(no output)"
