"""Watchdog that removes a local Ray's processes when the vmatte driver that started them dies uncleanly.

Ray fate-shares its head processes (GCS server, raylet, monitors) with the driver that called ``ray.init``,
but the raylet's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``, about 200 MB together) outlive a
SIGKILLed driver: with Ray 2.60 they were still running a minute later (their raylet-death check tries to
report to the GCS, which is gone). :func:`start` runs this file as a separate process in its own session right
after a local ``ray.init``. It reads the driver's process tree from ``/proc`` every ``INTERVAL_S`` and keeps
every descendant it has seen; when the pipe from the driver closes (the driver exited, however it died), it
kills the remembered processes that are still running, are the same processes (start time) and are Ray's
(their command line mentions ray), then exits. After a clean ``ray.shutdown`` nothing is left to kill.

Standard library only and run by file path, so starting it imports nothing of vmatte. Linux only (``/proc``);
elsewhere :func:`start` returns None.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

INTERVAL_S = 0.5


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # the command name may contain spaces and ')'
    return int(fields[1]), int(fields[19])


def _is_ray(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().lower()
    except OSError:
        return False
    return b"ray" in cmd


def descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every process below ``root`` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
            starts[int(name)] = st[1]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child in starts:
                found[child] = starts[child]
                todo.append(child)
    return found


def _sweep(known: dict[int, int]) -> int:
    """SIGKILL the remembered Ray processes that still run (same start time). Returns how many."""
    killed = 0
    for pid, start in list(known.items()):
        st = _stat(pid)
        if st is None or st[1] != start or pid == os.getpid() or not _is_ray(pid):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed


def watch(driver: int, fd: int = 0) -> None:
    """Remember ``driver``'s descendants until ``fd`` reaches end of file, then sweep them."""
    known: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([fd], [], [], INTERVAL_S)
        if ready and not os.read(fd, 4096):
            break
        for pid, start in descendants(driver).items():
            known.setdefault(pid, start)
    me = os.getpid()
    for _ in range(3):  # children a dying raylet spawned late, then whatever ignored the first kill
        for pid in [p for p in known if _stat(p) is not None]:
            for child, start in descendants(pid).items():
                if child != me:
                    known.setdefault(child, start)
        if not _sweep(known):
            break
        time.sleep(0.2)


def start() -> subprocess.Popen | None:
    """Start the watchdog for this process (call right after starting a local Ray). Close its ``stdin`` after
    ``ray.shutdown()`` (see :func:`stop`); if this process dies first, the pipe closes by itself."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        return None
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the driver's process group must not take the watchdog too
    )


def stop(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """End the watchdog after a clean shutdown: close its pipe and wait for its (empty) sweep."""
    if proc is None:
        return
    try:
        proc.stdin.close()
        proc.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()


if __name__ == "__main__":
    for sig in (signal.SIGINT, signal.SIGHUP):  # terminal signals; SIGTERM still ends it
        signal.signal(sig, signal.SIG_IGN)
    watch(int(sys.argv[1]))
