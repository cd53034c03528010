"""The job manifest: which chunks are finished, proven by sha256 checksums of their files, never by "the file
exists".

Layout, beside the (first) output::

    out/shot.mov                          final output (after assembly)
    out/shot.mov.vmatte-manifest.json     the manifest (a combined view, rewritten atomically)
    out/.shot.mov.vmatte-work/            hidden work folder
        job.json                          fingerprint of the settings that decide the pixels
        chunks/000000-000099.json         one record per finished chunk: its files, sizes and sha256
        segments/...                      per-chunk video segments / alpha intermediates (kept after assembly)

The per-chunk records are the truth: each is written by the process that rendered the chunk, after all its
files were complete (writers rename temp files into place only on success) and hashed, with a temp name and
an atomic rename. Farm nodes rendering different chunks of one job never write the same file, so no locking is
needed on shared storage. A chunk counts as done only if its record exists, was made with the same job
fingerprint, and every file it lists still has the recorded size and sha256 (re-hashed on every resume).
Partial files (killed mid-write) have no record, or are hidden temp files, and never count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmatte.io.atomic import write_text_atomic

MANIFEST_VERSION = 1
_PRINTF = re.compile(r"%0?\d*d")


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON under a hidden temp name in the same folder, fsync, then rename: readers (and a resumed job
    after a crash) see the old file or the new one, never half of one."""
    text = json.dumps(data, indent=1, default=str)
    write_text_atomic(path, text, fsync=True, tag=str(time.monotonic_ns()))


def read_json(path: Path) -> Any | None:
    """Parsed JSON, or None when missing or unreadable (a torn or foreign file is treated as absent)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def file_entry(path: Path, *, frame: int | None = None, output: int | None = None) -> dict[str, Any]:
    """Record of one finished file: path, size in bytes, sha256, and optionally its clip frame and output."""
    e: dict[str, Any] = {"path": str(path), "size": path.stat().st_size, "sha256": sha256_file(path)}
    if frame is not None:
        e["frame"] = frame
    if output is not None:
        e["output"] = output
    return e


def verify_entry(entry: dict[str, Any]) -> str | None:
    """None if the file still matches its record, else why not (missing / size / checksum)."""
    p = Path(entry["path"])
    try:
        size = p.stat().st_size
    except OSError:
        return f"{p}: missing"
    if size != entry.get("size"):
        return f"{p}: size {size} != recorded {entry.get('size')}"
    if sha256_file(p) != entry.get("sha256"):
        return f"{p}: checksum differs from the manifest"
    return None


def _safe_name(name: str) -> str:
    return _PRINTF.sub("#", name)


@dataclass
class Manifest:
    """Manifest and work folder of one chunked job, keyed by the final path of its first output."""

    anchor: Path  # final path of the first output (a printf pattern for sequences)
    fingerprint: str

    @property
    def path(self) -> Path:
        return self.anchor.with_name(_safe_name(self.anchor.name) + ".vmatte-manifest.json")

    @property
    def work(self) -> Path:
        return self.anchor.with_name(f".{_safe_name(self.anchor.name)}.vmatte-work")

    @property
    def chunks_dir(self) -> Path:
        return self.work / "chunks"

    @property
    def segments_dir(self) -> Path:
        return self.work / "segments"

    # -- job identity ------------------------------------------------------------------------------------
    def stored_fingerprint(self) -> str | None:
        job = read_json(self.work / "job.json")
        return job.get("fingerprint") if isinstance(job, dict) else None

    def is_ours(self) -> bool:
        """True when the work folder belongs to a job with the same settings (safe to resume into)."""
        return self.stored_fingerprint() == self.fingerprint

    def start(self, job_info: dict[str, Any]) -> list[str]:
        """Claim the work folder for this job. Records made with other settings (another fingerprint) are
        removed: they can never verify for this job. This job's own records are left alone even without
        resume (each chunk drops its record when it starts again), because on a farm other nodes may be
        writing records of this job right now. Returns notes for the report."""
        notes = []
        stored = self.stored_fingerprint()
        if stored is not None and stored != self.fingerprint:
            notes.append(f"{self.work}: settings changed since the last run, starting over")
            for rec in self.chunks_dir.glob("[!.]*.json"):
                data = read_json(rec)
                if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
                    rec.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.path.unlink()
        write_json_atomic(
            self.work / "job.json", {"version": MANIFEST_VERSION, "fingerprint": self.fingerprint, **job_info}
        )
        return notes

    # -- chunk records -----------------------------------------------------------------------------------
    def record_path(self, key: str) -> Path:
        return self.chunks_dir / f"{key}.json"

    def write_record(self, key: str, record: dict[str, Any]) -> None:
        """Record a finished chunk (its files must already be complete and in place)."""
        write_json_atomic(
            self.record_path(key),
            {
                "version": MANIFEST_VERSION,
                "fingerprint": self.fingerprint,
                "key": key,
                "finished_at": time.time(),
                **record,
            },
        )

    def drop_record(self, key: str) -> None:
        self.record_path(key).unlink(missing_ok=True)

    def verified(self, key: str, only=None) -> tuple[dict[str, Any] | None, str]:
        """(record, "") if chunk ``key`` is finished and all its files (those ``only(entry)`` selects, when
        given) match their checksums, else (None, why)."""
        rec = read_json(self.record_path(key))
        if not isinstance(rec, dict):
            return None, "no record"
        if rec.get("fingerprint") != self.fingerprint:
            return None, "recorded with other settings"
        for entry in rec.get("files", []):
            if only is not None and not only(entry):
                continue
            why = verify_entry(entry)
            if why:
                return None, why
        return rec, ""

    def records(self) -> dict[str, dict[str, Any]]:
        """All chunk records on disk (unverified), by key."""
        out = {}
        for p in sorted(self.chunks_dir.glob("[!.]*.json")):
            rec = read_json(p)
            if isinstance(rec, dict) and rec.get("fingerprint") == self.fingerprint:
                out[p.stem] = rec
        return out

    # -- the combined view -------------------------------------------------------------------------------
    def write(self, job_info: dict[str, Any], assembled: list[dict[str, Any]] | None = None) -> None:
        """Rewrite the combined manifest from the chunk records (atomically; last writer wins, and any
        writer's view is a consistent snapshot since the records themselves are never rewritten in place)."""
        data = {
            "version": MANIFEST_VERSION,
            "fingerprint": self.fingerprint,
            **job_info,
            "chunks": self.records(),
            "assembled": assembled or [],
            "updated_at": time.time(),
        }
        write_json_atomic(self.path, data)

    def assembled(self) -> list[dict[str, Any]]:
        data = read_json(self.path)
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
            return []
        return list(data.get("assembled") or [])


def fingerprint(config, info) -> str:
    """sha256 over everything that decides the output pixels: the input (path, size, mtime), the keyframe
    masks (names and content), engine / propagation / smoothing settings and the outputs. Device, batch size,
    threads, progress and report paths are left out: chunks from different nodes must match."""
    import dataclasses

    d = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    # input and masks are identified below by content, outputs by absolute path: a farm command (absolute
    # paths) and a local run (relative paths) of one job must agree
    for k in ("frames", "report", "progress", "overwrite", "pipeline", "input", "masks"):
        d.pop(k, None)
    eng = dict(d.get("engine") or {})
    for k in ("device", "batch_size"):
        eng.pop(k, None)
    d["engine"] = eng
    outs = []
    for o in d.get("outputs") or []:
        o = dict(o)
        if o.get("path"):
            o["path"] = os.path.abspath(o["path"])
        outs.append(o)
    d["outputs"] = outs
    try:
        st = os.stat(info.path)
        d["_input"] = {"path": os.path.abspath(info.path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    except OSError:
        d["_input"] = {"path": os.path.abspath(info.path), "files": len(info.files)}
    masks = []
    mdir = Path(config.masks)
    if mdir.is_dir():
        for p in sorted(mdir.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                masks.append([p.name, sha256_file(p)])
    d["_masks"] = masks
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
