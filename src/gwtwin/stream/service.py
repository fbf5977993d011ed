"""``gwtwin stream``: clean a live frame stream in 1 s increments.

:class:`StreamService` ties the parts together: a :class:`~gwtwin.stream.watcher.FrameWatcher`
on the directory a data-acquisition system fills, a
:class:`~gwtwin.stream.engine.StreamEngine` (offline cleaning's framing, one increment at a
time), the :class:`~gwtwin.stream.gate.SafetyGate` (the subtraction is tapered out wherever it
would add noise), a :class:`~gwtwin.stream.models.ModelFollower` (a registry alias, hot
reloaded at increment boundaries) and an :class:`~gwtwin.stream.writer.OutputWriter`.

Faults never pass silently; each gives a ``stream.jsonl`` event naming the file, the GPS span
and the reason, and every second of readable input appears in exactly one output frame:

- a missing file: after ``wait`` s with a later file present, the span is a gap (the segment
  closes there, as offline cleaning closes a data segment at a gap); with nothing after it, the
  segment closes after ``wait`` s so no second is held back for ever;
- a late file: read if it comes within ``wait``; after its span was declared a gap it is logged
  (``late``) and not read;
- a corrupt or truncated file: retried until ``wait`` s after it last changed, then a gap;
- NaN in a witness, a witness missing from a file or at another rate: the blocks it reaches are
  not predicted (raw strain passes through, ``WITNESS_BAD``), the rest of the second is cleaned;
- strain NaN: it stays NaN in the output (``STRAIN_BAD``); strain at another rate: the raw strain
  is written as it is (``STRAIN_BAD | RAW_PASSTHROUGH``) and a new segment starts after it.

**Restart.**  ``state.json`` holds the next second to write and the segment it belongs to; a
restarted service re-reads the frames on disk from ``context + gate window`` seconds before it
(the engine's and the gate's history), restores the gate's decision state, and resumes at
exactly that second.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import torch

from gwtwin.data.channels import cleaned_channel, prediction_channel
from gwtwin.data.segments import intersect_spans
from gwtwin.errors import GwtwinError
from gwtwin.infer.predict import _runs
from gwtwin.signal._threads import torch_threads
from gwtwin.stream.config import StreamConfig
from gwtwin.stream.engine import Increment, StreamEngine
from gwtwin.stream.gate import SafetyGate
from gwtwin.stream.models import ModelFollower, check_compatible
from gwtwin.stream.watcher import Arrival, FrameWatcher
from gwtwin.stream.writer import OutputWriter, read_checkpoint


def model_band(model) -> tuple[float, float]:
    """The band a model acts on, Hz: its high-pass corner to 90 % of its Nyquist frequency
    (colouring cuts the prediction outside it; :func:`~gwtwin.signal.conditioning.inverse_fir`)."""
    spec = model.spec
    hi = 0.9 * spec.sample_rate / 2
    return (float(spec.highpass or 0.0), float(min(hi, spec.strain_rate / 2)))


def _spans(mask: np.ndarray, start: int, rate: float) -> list[tuple[float, float]]:
    return [(start + a / rate, start + (b + 1) / rate) for a, b in _runs(np.flatnonzero(mask))]


class StreamService:
    """The online service (module docstring).

    Parameters
    ----------
    watch : path
        The directory the frames arrive in.
    output : path
        Where the outputs go (:mod:`gwtwin.stream.writer`); a ``state.json`` there is resumed.
    config : StreamConfig, optional
    model : TwinModel or str, optional
        The model or its URI (``models:/NAME@ALIAS`` is followed); default ``config.model``.
    tracking_uri : str, optional
    stop : threading.Event, optional
        Set it to stop the service (pending seconds are flushed first).
    """

    def __init__(
        self,
        watch,
        output,
        config: StreamConfig | None = None,
        *,
        model=None,
        tracking_uri: str | None = None,
        log=print,
        stop: threading.Event | None = None,
        clock=time.monotonic,
        sleep=time.sleep,
    ):
        self.config = config or StreamConfig()
        self.watch, self.output = Path(watch), Path(output)
        self.log = log
        self.stop = stop or threading.Event()
        self.clock, self.sleep = clock, sleep
        source = model if model is not None else self.config.model
        if source is None:
            raise GwtwinError(
                "no model to stream with: give --model models:/NAME@ALIAS (or stream.model)"
            )
        self.follower = ModelFollower(
            source,
            tracking_uri=tracking_uri or self.config.tracking_uri,
            poll_interval=self.config.model_poll,
            log=log,
        )
        self.current = self.follower.load()
        self.engine = self._engine(self.current.model)
        self.gate = self._gate(self.current.model)
        strain = self.current.model.spec.strain_channel
        self.cleaned_name = cleaned_channel(strain, self.config.suffix)
        self.writer = OutputWriter(self.output, strain, self.config, log=log)
        self.watcher = FrameWatcher(
            self.watch,
            strain,
            self._rates(self.current.model),
            tag=self.config.input_tag,
            wait=self.config.wait,
            clock=clock,
        )
        self.counts = {"seconds": 0, "gaps": 0, "gap_seconds": 0, "swaps": 0, "refused": 0}
        self._complete: dict[int, float] = {}  # second -> wall time its file was complete
        self._resume: int | None = None  # seconds before it are re-derived, not written

    # -- parts --------------------------------------------------------------------------------
    def _engine(self, model) -> StreamEngine:
        c = self.config
        return StreamEngine(
            model,
            lookahead=c.lookahead,
            taper=c.taper,
            batch_size=c.batch_size,
            precision=self.precision,
            decision=c.decision.decision(),
        )

    @property
    def precision(self) -> str:
        """The engine's arithmetic: ``stream.precision``, or for "auto" float64 in the exact
        mode (equal to offline cleaning) and float32 in the low-latency mode."""
        c = self.config
        if c.precision != "auto":
            return c.precision
        return "float64" if c.lookahead is None else "float32"

    def _gate(self, model) -> SafetyGate:
        return SafetyGate(self.config.gate, model.spec.strain_rate, model_band(model))

    @staticmethod
    def _rates(model) -> dict[str, float]:
        return {model.spec.strain_channel: model.spec.strain_rate, **model.sample_rates}

    # -- the loop -----------------------------------------------------------------------------
    @torch_threads()  # the caller's thread count comes back after the run
    def run(self) -> dict:
        """Run until ``config.end``, ``idle_timeout`` or ``stop``; returns the summary.

        At ``end`` and after ``idle_timeout`` the open segment is closed there and every pending
        second written (as offline cleaning ends a span); a ``stop`` leaves the seconds still
        waiting for their look-ahead to a restart, which continues exactly (``state.json``).
        """
        torch.set_num_threads(self.config.torch_threads)
        cursor = self._start()
        cfg = self.config
        self.writer.event(
            "start",
            gps=cursor,
            model=self.current.label(),
            lookahead=self.engine.latency_seconds,
            exact=cfg.lookahead is None,
            resume=self._resume,
        )
        self.log(
            f"streaming {self.watch} -> {self.output} from GPS {cursor} with "
            f"{self.current.label()}; look-ahead {self.engine.latency_seconds} s"
        )
        while not self.stop.is_set():
            if cfg.end is not None and cursor >= cfg.end:
                break
            self._maybe_swap()
            for f in self.watcher.late(cursor):
                self.writer.event(
                    "late",
                    path=str(f.path),
                    span=[f.start_ns / 1e9, f.end_ns / 1e9],
                    reason="arrived after its span was declared a gap; not read",
                )
                self.log(f"late file {f.path.name} ignored: its span was already a gap")
            arrival = self.watcher.look(cursor, cfg.end)
            if arrival.kind == "idle":
                if self.engine.open and arrival.waited >= cfg.wait:
                    self._close(f"no data after GPS {cursor} for {cfg.wait:g} s")
                if cfg.idle_timeout is not None and arrival.waited >= cfg.idle_timeout:
                    break
                self.sleep(cfg.poll)
                continue
            cursor = self._handle(arrival)
        return self._finish(cursor, flush=not self.stop.is_set())

    def _start(self) -> int:
        """The first GPS second to read: a checkpoint's, ``config.start``, or the first file."""
        state = read_checkpoint(self.output)
        if state is not None:
            nxt, seg = int(state["next"]), state.get("segment_start")
            self.writer.last = nxt - 1
            self._resume = nxt
            self.watcher.forget_before(nxt)
            if seg is None:
                return nxt
            if state.get("gate"):
                self.gate.load_state_dict(state["gate"])
            window = math.ceil(self.config.gate.window)  # the gate's history, re-derived
            first = max(int(seg), nxt - window - self.engine.context_seconds - 1)
            self.engine.start_segment(first, emit_from=max(first, nxt - window))
            self.gate.forget_history()
            self.log(f"resuming at GPS {nxt} (re-deriving the state from GPS {first})")
            return first
        if self.config.start is not None:
            return int(self.config.start)
        while not self.stop.is_set():
            files = self.watcher.files()
            if files:
                return files[0].start_ns // 1_000_000_000
            self.sleep(self.config.poll)
        raise GwtwinError(f"stopped before any frame file arrived in {self.watch}")

    def _handle(self, arrival: Arrival) -> int:
        """Process one arrival; returns the new cursor."""
        a, b = arrival.start, arrival.end
        if arrival.kind == "data":
            if not self.engine.open:
                self.engine.start_segment(a)
                self.writer.event("segment", gps=a)
            for channel, why in arrival.problems.items():
                self.writer.event(
                    "witness", channel=channel, span=[a, b], reason=why, path=str(arrival.path)
                )
                self.log(f"GPS [{a}, {b}): {why}; the blocks it reaches are not cleaned")
            for s in range(a, b):
                self._complete[s] = arrival.mtime
            t0 = time.perf_counter()
            self.engine.feed(a, b, arrival.strain, arrival.witnesses)
            increments = self.engine.ready()
            compute = time.perf_counter() - t0
            self._emit(increments, arrival.mtime, compute)
            return b
        what = {"strain_bad": "strain unusable", "corrupt": "corrupt file", "gap": "gap"}[
            arrival.kind
        ]
        self._close(f"{what} from GPS {a}")
        self.writer.event(
            arrival.kind,
            span=[a, b],
            reason=arrival.reason,
            path=str(arrival.path) if arrival.path else None,
        )
        self.log(f"GPS [{a}, {b}) {what}: {arrival.reason}")
        if arrival.kind == "strain_bad" and arrival.strain is not None:
            self._passthrough(arrival)
        else:
            self.counts["gaps"] += 1
            self.counts["gap_seconds"] += b - a
        return b

    def _close(self, why: str) -> None:
        if self.engine.open:
            self._emit(self.engine.close_segment(), None, 0.0)
            self.writer.flush()
            self.writer.event("segment_end", gps=self.engine.end, reason=why)
            self._checkpoint()

    # -- seconds ------------------------------------------------------------------------------
    def _emit(self, increments: list[Increment], ready_wall, compute: float) -> None:
        share = compute / max(len(increments), 1)
        for inc in increments:
            if self._resume is not None and inc.start < self._resume:
                raw = inc.raw.data[0].numpy()
                if np.isfinite(raw).all():
                    self.gate.remember(inc.start, raw, inc.prediction.data[0].numpy())
                else:
                    self.gate.forget_history()
                continue
            t0 = time.perf_counter()
            second = self._second(inc)
            second["compute"] = share + time.perf_counter() - t0
            second["ready_wall"] = ready_wall
            second["complete_wall"] = self._complete.pop(inc.start, None)
            if self.writer.add(second):
                self._checkpoint()
            self.counts["seconds"] += 1

    def _second(self, inc: Increment) -> dict:
        raw = inc.raw.data[0].numpy()
        pred = inc.prediction.data[0].numpy()
        rate = inc.raw.sample_rate
        finite = np.isfinite(raw)
        bits = {"WITNESS_BAD": inc.witness_bad, "STRAIN_BAD": [], "CLEANING_DISABLED": []}
        gate = {}
        if finite.all():
            d = self.gate.step(inc.start, raw, pred)
            gain = d.gain
            gate = {
                "enabled": d.enabled,
                "asd_ratio": d.asd_ratio,
                "glitch_ratio": d.glitch_ratio,
                "reason": d.reason,
                "disabled_seconds": d.disabled_seconds,
            }
            if self.config.gate.enabled:
                bits["CLEANING_DISABLED"] = _spans(gain < 1, inc.start, rate)
        else:
            gain = np.ones_like(raw)
            bits["STRAIN_BAD"] = _spans(~finite, inc.start, rate)
            self.gate.forget_history()
        bits["CLEANING_APPLIED"] = intersect_spans(inc.applied, _spans(gain > 0, inc.start, rate))
        bits["PROVISIONAL"] = [(float(inc.start), float(inc.end))] if inc.provisional else []
        cleaned = inc.cleaned(gain, self.config.suffix)
        g = torch.as_tensor(gain, dtype=torch.float64)
        prediction = inc.prediction.replace(data=g * inc.prediction.data)
        return {
            "start": inc.start,
            "cleaned": cleaned,
            "prediction": prediction,
            "bits": bits,
            "model": self.current.label(),
            "version": self.current.version,
            "gate": gate,
            "provisional": inc.provisional,
        }

    def _passthrough(self, arrival: Arrival) -> None:
        """Write raw strain at the rate found (no model output) for a strain-rate fault."""
        from gwtwin.data import Block
        from gwtwin.data.block import NS

        rate = int(round(arrival.strain_rate))
        strain = self.current.model.spec.strain_channel
        pred_name = prediction_channel(strain)
        for s in range(arrival.start, arrival.end):
            x = torch.as_tensor(
                arrival.strain[(s - arrival.start) * rate : (s - arrival.start + 1) * rate]
            )
            span = [(float(s), float(s + 1))]
            second = {
                "start": s,
                "cleaned": Block(
                    x[None].clone(),
                    s * NS,
                    float(rate),
                    (self.cleaned_name,),
                    (self.current.model.spec.strain_unit,),
                ),
                "prediction": Block(
                    torch.zeros_like(x)[None],
                    s * NS,
                    float(rate),
                    (pred_name,),
                    (self.current.model.spec.strain_unit,),
                ),
                "bits": {"STRAIN_BAD": span, "RAW_PASSTHROUGH": span},
                "model": self.current.label(),
                "version": self.current.version,
                "gate": {},
                "reason": arrival.reason,
                "ready_wall": arrival.mtime,
                "complete_wall": arrival.mtime,
            }
            if self.writer.add(second):
                self._checkpoint()
            self.counts["seconds"] += 1
        self.writer.flush()

    # -- models -------------------------------------------------------------------------------
    def _maybe_swap(self) -> None:
        self.follower.poll()
        loaded = self.follower.take()
        if loaded is None:
            return
        try:
            check_compatible(
                loaded.model, self.current.model, stream_rates=self._stream_rates(loaded.model)
            )
        except GwtwinError as exc:
            self.follower.refuse(loaded, str(exc))
            self.writer.event("refused", model=loaded.label(), reason=str(exc))
            self.log(f"refused {loaded.label()}: {exc}; {self.current.label()} keeps running")
            self.counts["refused"] += 1
            return
        old, new = self.engine, self._engine(loaded.model)
        at = old.next_out
        if old.open:
            t0, strain, wit = old.history()
            new.start_segment(t0, emit_from=at)
            missing = [c for c in loaded.model.channels if c not in wit]
            if missing:
                wit.update(self._reread(missing, t0, old.end, loaded.model))
            new.feed(t0, old.end, strain, wit)
        self.follower.adopt(loaded)
        self.engine, previous, self.current = new, self.current, loaded
        if model_band(loaded.model) != model_band(previous.model):
            self.gate = self._gate(loaded.model)  # other bands: its window cannot carry over
            self.log("the safety gate starts afresh: the new model acts on another band")
        # else the gate goes on: its window holds the old model's seconds and its state (a
        # disabled gate needs resume_after good increments of the new model to re-enable)
        self.watcher.rates = self._rates(loaded.model)
        self.counts["swaps"] += 1
        self.writer.event("swap", at=at, old=previous.label(), new=loaded.label())
        self.log(f"GPS {at}: swapped {previous.label()} -> {loaded.label()}")
        if new.open:
            self._emit(new.ready(), None, 0.0)

    def _stream_rates(self, model) -> dict[str, float]:
        """Native rates of the new model's witnesses in the latest file (or the buffer's)."""
        from gwtwin.data.frames import read

        rates = self._rates(self.current.model)
        files = self.watcher.files()
        for c in model.channels:
            if c in rates or not files:
                continue
            try:
                rates[c] = read(files[-1].path, [c]).block.sample_rate
            except Exception:  # noqa: BLE001 - absent: check_compatible names it
                pass
        return rates

    def _reread(self, channels, a: int, b: int, model) -> dict[str, np.ndarray | None]:
        from gwtwin.data.frames import read

        out = {}
        for c in channels:
            try:
                out[c] = read(self.watch, [c], a, b).filled().data[0].numpy()
            except Exception as exc:  # noqa: BLE001 - unusable history: not predicted there
                self.log(f"no history of {c} over GPS [{a}, {b}) for the new model: {exc}")
                out[c] = None
        return out

    # -- state --------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        if self.writer.last is None:
            return
        nxt = self.writer.last + 1
        self.writer.checkpoint(
            {
                "next": nxt,
                "segment_start": self.engine.seg_start if self.engine.open else None,
                "model": {
                    "label": self.current.label(),
                    "version": self.current.version,
                    "uri": self.current.uri,
                },
                "gate": self.gate.state_dict(history=False),
                "wall": time.time(),
            }
        )

    def _finish(self, cursor: int, *, flush: bool) -> dict:
        if flush:
            self._close("stopped")
        self.writer.flush()
        summary = {**self.counts, "cursor": cursor, "model": self.current.label()}
        self.writer.event("stop", **summary)
        self.writer.close()
        self._checkpoint()
        self.follower.close()
        return summary
