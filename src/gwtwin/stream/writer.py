"""What ``gwtwin stream`` writes: output frames, the state vector, flags, the log, the checkpoint.

Output directory::

    frames/      <OBS>-<TAG>-<GPS>-<D>.gwf (or .hdf5), one per ``output_duration`` s (aligned to
                 multiples of it): <STRAIN>_CLEANED, <STRAIN>_PREDICTION (what was subtracted)
                 and <IFO>:GWTWIN-STREAM_STATE (16 Hz bit mask, :data:`STATE_BITS`); the FrHistory
                 records (HDF5: attributes) say which model version cleaned the frame
    flags/       <IFO>:GWTWIN-CLEANING_APPLIED / -CLEANING_DISABLED / -WITNESS_BAD / -STRAIN_BAD
                 (LIGO_LW XML, HDF5, DQSEGDB JSON), known = every second written, rewritten
                 every ``flags_every`` s of output and at the end; their description lists the
                 model versions and the GPS spans each cleaned
    stream.jsonl one line per second (latency, compute time, model version, gate, problems) and
                 one per event (start, gap, corrupt file, late file, model swap or refusal, stop)
    state.json   the checkpoint: the next second to write, the segment it belongs to, the model
                 version, the gate's decision state (rewritten atomically after every frame)

A second is written exactly once: :class:`OutputWriter` refuses a second at or before the last
one written, and a restarted service resumes from ``state.json``'s ``next``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import Block
from gwtwin.data.block import NS, concat_in_time
from gwtwin.data.channels import flag_name, ifo, observatory
from gwtwin.data.files import frame_name
from gwtwin.data.frames import write_frame
from gwtwin.data.segments import merge_spans
from gwtwin.errors import GwtwinError
from gwtwin.infer.clean import json_default

STATE_RATE = 16  #: Hz of the state-vector channel
STATE_BITS = {
    "CLEANING_APPLIED": 0,  # a prediction was subtracted (gain > 0 where the model predicted)
    "CLEANING_DISABLED": 1,  # the safety gate held the subtraction back (gain < 1)
    "WITNESS_BAD": 2,  # a witness was unusable (NaN, missing, other rate, unreadable)
    "STRAIN_BAD": 3,  # strain NaN/inf, or at another rate (written raw)
    "PROVISIONAL": 4,  # low-latency mode: future witness data were not all known
    "RAW_PASSTHROUGH": 5,  # no model output at all: the output is the raw strain
}
FLAG_BITS = ("CLEANING_APPLIED", "CLEANING_DISABLED", "WITNESS_BAD", "STRAIN_BAD")
STATE_FILE = "state.json"
LOG_FILE = "stream.jsonl"


def state_channel(strain_channel: str) -> str:
    """The state-vector channel of a stream's output (``<IFO>:GWTWIN-STREAM_STATE``)."""
    return f"{ifo(strain_channel)}:GWTWIN-STREAM_STATE"


def _spans_mask(spans, start: int, n: int) -> np.ndarray:
    """Which of the ``n`` 1/16 s slots from GPS ``start`` intersect ``spans``."""
    mask = np.zeros(n, dtype=bool)
    for a, b in spans:
        i0 = max(int(np.floor((a - start) * STATE_RATE)), 0)
        i1 = min(int(np.ceil((b - start) * STATE_RATE)), n)
        if b > a and i1 > i0:
            mask[i0:i1] = True
    return mask


class OutputWriter:
    """Writes a stream's outputs (module docstring); seconds come in with :meth:`add`."""

    def __init__(self, output, strain_channel: str, config, *, log=print):
        self.output = Path(output)
        self.frames = self.output / "frames"
        self.frames.mkdir(parents=True, exist_ok=True)
        self.strain = strain_channel
        self.config = config
        self.log = log
        self.observatory = observatory(strain_channel)
        self.state_name = state_channel(strain_channel)
        self.pending: list[dict] = []
        self.last: int | None = None  # last second written
        self.known: list[tuple[float, float]] = []
        self.active: dict[str, list[tuple[float, float]]] = {k: [] for k in FLAG_BITS}
        self.models: list[list] = []  # [label, start, end]
        self._since_flags = 0
        self._log = open(self.output / LOG_FILE, "a", buffering=1)  # noqa: SIM115 - kept open

    # -- the log ------------------------------------------------------------------------------
    def event(self, kind: str, **fields) -> None:
        """One JSON line (``kind``: start, gap, corrupt, late, swap, refused, ...)."""
        record = {"kind": kind, "wall": time.time(), **fields}
        self._log.write(json.dumps(record, default=json_default) + "\n")

    # -- seconds ------------------------------------------------------------------------------
    def add(self, second: dict) -> list[Path]:
        """Queue one output second; write the frame it completes.

        ``second`` holds ``start`` (GPS s), ``cleaned`` and ``prediction`` (Blocks), ``bits``
        (dict name -> GPS spans inside the second), ``model`` (label) and the log fields.
        """
        s = int(second["start"])
        if self.last is not None and s <= self.last:
            raise GwtwinError(
                f"second GPS {s} was already written (last written: {self.last}); a second is "
                "written exactly once"
            )
        prev = self.pending[-1] if self.pending else None
        if prev and (
            s != prev["start"] + 1 or second["cleaned"].sample_rate != prev["cleaned"].sample_rate
        ):
            self.flush()
        self.pending.append(second)
        d = self.config.output_duration
        if (s + 1) % d == 0:
            return self.flush()
        return []

    def flush(self) -> list[Path]:
        """Write the queued seconds as one frame (a partial one at a gap or at the end)."""
        if not self.pending:
            return []
        seconds, self.pending = self.pending, []
        a, b = seconds[0]["start"], seconds[-1]["start"] + 1
        blocks = [concat_in_time([x["cleaned"] for x in seconds])]
        if self.config.write_prediction:
            blocks.append(concat_in_time([x["prediction"] for x in seconds]))
        state = np.zeros((b - a) * STATE_RATE, dtype=np.int32)
        for x in seconds:
            off = (x["start"] - a) * STATE_RATE
            for name, spans in x["bits"].items():
                m = _spans_mask(spans, x["start"], STATE_RATE)
                state[off : off + STATE_RATE] |= m.astype(np.int32) << STATE_BITS[name]
        blocks.append(
            Block(
                torch.as_tensor(state)[None], a * NS, float(STATE_RATE), (self.state_name,), ("",)
            )
        )
        labels = sorted({x["model"] for x in seconds})
        history = {
            "gwtwin-model": ", ".join(labels),
            "gwtwin-stream": f"lookahead {self.config.lookahead}; gate "
            f"{'on' if self.config.gate.enabled else 'monitoring'}",
        }
        name = frame_name(self.observatory, self.config.tag, a, b - a, self.config.format)
        path = write_frame(self.frames / name, blocks, format=self.config.format, history=history)
        wall = time.time()
        for x in seconds:
            fields = {k: v for k, v in x.items() if k not in ("cleaned", "prediction", "bits")}
            if x.get("ready_wall") is not None:
                fields["latency"] = wall - x["ready_wall"]
            if x.get("complete_wall") is not None:
                fields["latency_total"] = wall - x["complete_wall"]
            fields["bits"] = {k: v for k, v in x["bits"].items() if v}
            self.event("second", frame=str(path.relative_to(self.output)), **fields)
            self._account(x)
        self.last = b - 1
        self._since_flags += b - a
        if self._since_flags >= self.config.flags_every:
            self.write_flags()
        return [path]

    def _account(self, x: dict) -> None:
        s = x["start"]
        self.known = merge_spans([*self.known, (float(s), float(s + 1))])
        for name in FLAG_BITS:
            spans = x["bits"].get(name) or []
            if spans:
                self.active[name] = merge_spans([*self.active[name], *spans])
        if self.models and self.models[-1][0] == x["model"] and self.models[-1][2] == s:
            self.models[-1][2] = s + 1
        else:
            self.models.append([x["model"], s, s + 1])

    # -- flags and checkpoint -----------------------------------------------------------------
    def write_flags(self) -> None:
        """(Re)write the flag files for everything written so far."""
        from gwtwin.data.flags import make_flag, write_flags

        self._since_flags = 0
        if not self.known:
            return
        cleaned_by = "; ".join(f"{m} [{a}, {b})" for m, a, b in self.models)
        flags = [
            make_flag(
                flag_name(self.strain, name),
                self.active[name],
                self.known,
                description=f"gwtwin stream {name.lower().replace('_', ' ')}; models: {cleaned_by}",
            )
            for name in FLAG_BITS
        ]
        write_flags(flags, self.output / "flags" / "gwtwin-stream", overwrite=True)

    def checkpoint(self, state: dict) -> None:
        """Rewrite ``state.json`` atomically."""
        path = self.output / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, default=json_default))
        os.replace(tmp, path)

    def close(self) -> None:
        self.flush()
        self.write_flags()
        self._log.close()


def read_checkpoint(output) -> dict | None:
    """``state.json`` of a previous run in ``output``, or None."""
    path = Path(output) / STATE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GwtwinError(
            f"{path} is not a stream checkpoint ({exc}); remove it to start over"
        ) from None
