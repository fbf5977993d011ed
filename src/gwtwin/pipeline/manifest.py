"""The run manifest: what each pipeline step read, wrote and was configured with.

A run directory holds ``manifest.json``; per step it records the hash of the step's part of the
config, the code version that ran it, a content fingerprint of every input and output file
(size + SHA-256), and when it started and finished. A step is up to date when its entry says it
finished, its config hash is unchanged, its inputs still have the recorded fingerprints and its
outputs still exist with theirs. Fingerprints are of content, not modification times: a step that
re-runs and writes identical files leaves the steps after it up to date.

The manifest is rewritten atomically (temporary file + rename) after every change, so an
interrupted run leaves either the old or the new manifest, never a torn one; a step that was
interrupted is recorded as ``"started"`` and runs again on the next call.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gwtwin.errors import GwtwinError

MANIFEST_NAME = "manifest.json"
FORMAT = "gwtwin-run-manifest/1"
_CHUNK = 1 << 22


def config_hash(section: Any) -> str:
    """SHA-256 of a JSON-able config section, independent of key order."""
    text = json.dumps(section, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def code_version() -> str:
    """gwtwin's version, plus the git commit (and ``-dirty``) when run from a checkout."""
    from gwtwin import __version__

    root = Path(__file__).resolve().parents[3]
    if (root / ".git").exists():
        try:
            commit = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            return f"{__version__}+{commit}"
        except (OSError, subprocess.SubprocessError):
            pass
    return __version__


def fingerprint(path: Path) -> dict[str, Any] | None:
    """``{"size", "sha256"}`` of a file, or of a directory's files (sorted relative paths).

    ``None`` when the path does not exist.
    """
    path = Path(path)
    if not path.exists():
        return None
    digest = hashlib.sha256()
    size = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
                size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Manifest:
    """The ``manifest.json`` of one run directory."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / MANIFEST_NAME
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except json.JSONDecodeError as err:
                raise GwtwinError(
                    f"run manifest {self.path} is not valid JSON ({err}); delete it to re-run "
                    "every step"
                ) from None
            if data.get("format") != FORMAT:
                raise GwtwinError(
                    f"{self.path} is not a gwtwin run manifest: expected format {FORMAT!r}, "
                    f"found {data.get('format')!r}"
                )
            self.steps = data.get("steps", {})

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "steps": self.steps}, indent=2) + "\n")
        os.replace(tmp, self.path)

    def _files(self, paths) -> dict[str, Any]:
        return {str(p): fingerprint(self.run_dir / p) for p in paths}

    def started(self, step: str, chash: str, inputs) -> None:
        self.steps[step] = {
            "status": "started",
            "config_hash": chash,
            "code_version": code_version(),
            "inputs": self._files(inputs),
            "outputs": {},
            "started": _now(),
        }
        self.save()

    def finished(self, step: str, outputs, seconds: float) -> None:
        entry = self.steps[step]
        entry.update(
            status="done", outputs=self._files(outputs), finished=_now(), seconds=round(seconds, 3)
        )
        self.save()

    def stale_reason(self, step: str, chash: str, inputs, outputs) -> str | None:
        """Why ``step`` must run, or ``None`` when it is up to date."""
        entry = self.steps.get(step)
        if entry is None:
            return "never run"
        if entry.get("status") != "done":
            return f"interrupted (status {entry.get('status')!r})"
        if entry.get("config_hash") != chash:
            return "its configuration changed"
        recorded = entry.get("inputs", {})
        for path in inputs:
            if recorded.get(str(path)) != fingerprint(self.run_dir / path):
                return f"input {path} changed"
        recorded = entry.get("outputs", {})
        for path in outputs:
            now = fingerprint(self.run_dir / path)
            if now is None:
                return f"output {path} is missing"
            if recorded.get(str(path)) != now:
                return f"output {path} changed since the step wrote it"
        return None
