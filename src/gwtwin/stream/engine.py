"""The streaming engine: offline cleaning's framing, one increment at a time, state in memory.

:class:`StreamEngine` is fed contiguous raw data (strain and the model's witnesses, any number
of whole seconds at a time) and hands back cleaned-strain :class:`Increment` s of one second
each, as soon as the data they need have arrived.  It keeps exactly the framing of offline
cleaning (:mod:`gwtwin.infer.predict`): the same conditioning, the same global window grid (block
``k`` covers model-rate samples ``[k hop, (k + 1) hop)`` of GPS time and is predicted from the
window ``[k hop - margin, (k + 1) hop + margin)``), the same predictability rule (window plus
conditioning edge inside the data segment, no bad witness sample), the same tapers where a
predictable run starts or ends, and the same colouring.  What it holds between increments:

- the raw witness and strain samples of the last ``context + 1`` seconds (never re-read);
- the central prediction of every block still needed (each block is conditioned and predicted
  once, from the ``window + 2 edge`` seconds of witness data around it, when those have arrived);
- the block predictability decisions and the model-rate intervals of bad witness samples.

**Look-ahead.**  Second ``s`` needs the prediction over ``[s - C, s + 1 + C]`` (``C``: the
colouring filter's reach), i.e. the blocks covering it, and the predictability of their
neighbours (which decides the tapers); block ``k`` is known once the data reach
``(k + 1) hop + margin + edge``.  Second ``s`` is therefore emitted when the data reach at most
``s + 1 + context`` (``context`` = :attr:`GridPredictor.context_seconds`, 20 s for the default
model), usually less, depending on where ``s`` falls in its block.  Within a segment the output
equals offline cleaning of the same span to float64 rounding: every block's window is
conditioned from data that reach at least ``edge`` beyond it on both sides, so it agrees with
offline's to rounding, the network runs in float64 (whose kernels, unlike float32's, give the
same result to rounding whatever the batch shape and thread count), and colouring is a local
filter (see :mod:`gwtwin.infer.predict`).

**Low-latency mode** (``lookahead=L`` seconds, ``0 <= L < context``): second ``s`` is emitted
when the data reach ``s + 1 + L`` even if some blocks it needs are not known yet.  Those blocks
are predicted *provisionally*: the witness data beyond the last second received are taken as
their training mean (0 after conditioning), and an undecided neighbour is taken as
predictable.  Provisional predictions are never cached: each later second recomputes them with
the data it has.  The output of this mode differs from offline cleaning where the future
mattered; ``Increment.provisional`` says where.

**Segments.**  A segment starts with :meth:`StreamEngine.start_segment` and is fed without gaps;
:meth:`StreamEngine.close_segment` declares its end (a gap, a stop), after which the blocks
beyond the end are unpredictable and every pending second is emitted, exactly as offline
cleaning treats the end of a data segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.data import Block
from gwtwin.data.channels import cleaned_channel
from gwtwin.errors import GwtwinError
from gwtwin.infer.decide import Decision
from gwtwin.infer.predict import NS, GridPredictor, _active, _runs
from gwtwin.models.twin import TwinModel
from gwtwin.signal.conditioning import condition_witnesses


@dataclass
class Increment:
    """One emitted second (or span) of the stream.

    Attributes
    ----------
    start, end : int
        GPS seconds ``[start, end)``.
    raw : Block
        The raw strain (float64, strain rate).
    prediction : Block
        The model's prediction in strain units at the strain rate, where the subtraction
        decision keeps it (before the online safety gate).
    whitened : Block
        The whitened prediction at the model rate.
    applied : list of (float, float)
        GPS intervals where a prediction is subtracted (predictable blocks the decision kept).
    witness_bad : list of (float, float)
        GPS intervals where a witness sample was unusable (NaN, missing, wrong rate).
    provisional : bool
        Low-latency mode only: some of the future data this second's prediction or its
        subtraction decision depends on had not arrived (the output is not final offline
        cleaning).
    decisions : dict or None
        The subtraction decision's rows for the units starting in this second
        (:data:`gwtwin.infer.decide.UNIT_COLUMNS`); None without a decision.
    """

    start: int
    end: int
    raw: Block
    prediction: Block
    whitened: Block
    applied: list[tuple[float, float]]
    witness_bad: list[tuple[float, float]]
    provisional: bool = False
    decisions: dict | None = None

    def cleaned(self, gain=1.0, suffix: str | None = None) -> Block:
        """``raw - gain * prediction`` as the cleaned channel (``gain``: scalar or per sample)."""
        name = cleaned_channel(self.raw.channels[0], suffix) if suffix else self.raw.channels[0]
        g = torch.as_tensor(gain, dtype=torch.float64)
        data = self.raw.data - g * self.prediction.data
        return Block(data, self.raw.t0_ns, self.raw.sample_rate, (name,), self.raw.units)


class _Series:
    """A growing buffer of one channel at a whole-number rate, trimmed from the front."""

    def __init__(self, rate: int, t0: int):
        self.rate, self.t0 = rate, t0
        self.data = np.empty(0, dtype=np.float64)

    @property
    def end(self) -> int:
        return self.t0 + self.data.size // self.rate

    def append(self, values: np.ndarray) -> None:
        self.data = np.concatenate([self.data, values])

    def view(self, a: int, b: int) -> np.ndarray:
        if a < self.t0 or b > self.end:
            raise GwtwinError(
                f"internal: buffer holds GPS [{self.t0}, {self.end}), asked [{a}, {b})"
            )
        return self.data[(a - self.t0) * self.rate : (b - self.t0) * self.rate]

    def trim(self, t: int) -> None:
        if t > self.t0:
            cut = min(t, self.end)
            self.data = self.data[(cut - self.t0) * self.rate :].copy()
            self.t0 = cut


def _whole_rate(name: str, rate: float) -> int:
    if rate != round(rate) or rate < 1:
        raise GwtwinError(
            f"the stream handles whole seconds: channel {name} must have a whole-number rate "
            f">= 1 Hz, found {rate:g} Hz"
        )
    return int(round(rate))


class StreamEngine:
    """Exact 1 s increments of offline cleaning with a :class:`TwinModel` (module docstring).

    Parameters
    ----------
    model : TwinModel
        A time-domain twin model.
    lookahead : int, optional
        Low-latency mode: emit second ``s`` once the data reach ``s + 1 + lookahead`` seconds
        (provisional predictions, see the module docstring).  None: exact (offline) output.
    taper : float
        Half-Hann taper where a predictable run starts or ends, s (as offline cleaning).
    batch_size : int
        Windows per network call.
    precision : {"float64", "float32"}
        See :class:`~gwtwin.infer.predict.GridPredictor` (float64: equal to offline cleaning
        to float64 rounding whatever the batching and threads).
    decision : Decision, optional
        Where to subtract (:mod:`gwtwin.infer.decide`), as offline cleaning; default
        ``Decision()`` (offline cleaning's default), ``Decision(enabled=False)`` subtracts
        wherever a prediction exists.
    """

    def __init__(
        self,
        model: TwinModel,
        *,
        lookahead: int | None = None,
        taper: float = 1.0,
        batch_size: int = 16,
        precision: str = "float64",
        decision: Decision | None = None,
    ):
        self.model = model
        self.grid = GridPredictor(
            model,
            taper=taper,
            batch_size=batch_size,
            attribute=False,
            precision=precision,
            decision=Decision() if decision is None else decision,
        )
        g = self.grid
        self.rate, self.hop, self.margin, self.edge = g.rate, g.hop, g.margin, g.edge
        self.colour_edge = g.colour_edge
        self.strain_channel = model.spec.strain_channel
        self.strain_rate = _whole_rate(self.strain_channel, model.spec.strain_rate)
        self.rates = {w.name: _whole_rate(w.name, w.sample_rate) for w in model.spec.witnesses}
        if lookahead is not None and not 0 <= int(lookahead) < g.context_seconds:
            raise GwtwinError(
                f"lookahead must be in [0, {g.context_seconds}) s for this model (its exact "
                f"look-ahead is {g.context_seconds} s), found {lookahead}"
            )
        self.lookahead = None if lookahead is None else int(lookahead)
        self.seg_start: int | None = None
        self.seg_end: int | None = None
        self.end: int | None = None
        self.next_out: int | None = None

    # -- geometry -----------------------------------------------------------------------------
    @property
    def context_seconds(self) -> int:
        """The exact mode's maximum look-ahead (and the history kept), s."""
        return self.grid.context_seconds

    @property
    def latency_seconds(self) -> int:
        """Data needed beyond a second before it is emitted, at most, s."""
        return self.context_seconds if self.lookahead is None else self.lookahead

    def _bounds(self, k: int) -> tuple[int, int]:
        """Model-rate samples block ``k``'s window plus the conditioning edge needs."""
        return (
            k * self.hop - self.margin - self.edge,
            (k + 1) * self.hop + self.margin + self.edge,
        )

    def _bad_overlap(self, lo: int, hi: int) -> bool:
        return any(b0 < hi and b1 > lo for b0, b1 in self.bad)

    def _status(self, k: int) -> bool | None:
        """Block ``k``'s predictability, or None while the data do not yet decide it."""
        lo, hi = self._bounds(k)
        if lo < self.seg_start * self.rate:
            return False
        limit = self.seg_end if self.seg_end is not None else self.end
        if hi > limit * self.rate:
            return False if self.seg_end is not None else None
        return not self._bad_overlap(lo, hi)

    # -- segments and data --------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.seg_start is not None and self.seg_end is None

    def start_segment(self, gps: int, *, emit_from: int | None = None) -> None:
        """Begin a contiguous data segment at GPS second ``gps``; emit from ``emit_from``
        (default ``gps``; later to resume without re-emitting, earlier is refused)."""
        if self.open:
            raise GwtwinError(
                f"a segment is open since GPS {self.seg_start}; close it before starting another"
            )
        gps = int(gps)
        first = gps if emit_from is None else int(emit_from)
        if first < gps:
            raise GwtwinError(f"cannot emit from GPS {first}, before the segment start {gps}")
        self.seg_start, self.seg_end, self.end, self.next_out = gps, None, gps, first
        self.strain = _Series(self.strain_rate, gps)
        self.witness = {c: _Series(r, gps) for c, r in self.rates.items()}
        self.bad: list[tuple[int, int]] = []
        self.blocks: dict[int, torch.Tensor] = {}
        self.ok: dict[int, bool] = {}
        out_lo = first * self.rate - self.colour_edge
        self._k_next = self.grid.decision_span(out_lo, out_lo + 1)[0] // self.hop - 1

    def feed(self, start: int, end: int, strain, witnesses) -> None:
        """Append raw data over GPS ``[start, end)`` (whole seconds, contiguous with the last).

        Parameters
        ----------
        strain : array-like
            Strain samples at the model's strain rate (NaN allowed: it stays in the output).
        witnesses : mapping channel -> array-like or None
            Every model witness at its native rate; None (or a missing key) marks the channel
            unusable over the span (missing from a file, wrong rate), NaN/inf samples mark
            themselves; the blocks they reach are not predicted.
        """
        if not self.open:
            raise GwtwinError("no open segment: call start_segment() before feeding data")
        start, end = int(start), int(end)
        if start != self.end or end <= start:
            raise GwtwinError(
                f"data must continue the segment: expected GPS [{self.end}, ...), found "
                f"[{start}, {end}); close the segment at a gap"
            )
        n = end - start
        x = np.asarray(strain, dtype=np.float64).reshape(-1)
        if x.size != n * self.strain_rate:
            raise GwtwinError(
                f"strain {self.strain_channel}: expected {n * self.strain_rate} samples "
                f"({n} s at {self.strain_rate} Hz), found {x.size}"
            )
        rows = {}
        for name, rate in self.rates.items():
            values = witnesses.get(name)
            if values is None:
                rows[name] = np.full(n * rate, np.nan)  # kept as NaN: a hand-over sees it too
                self.bad.append((start * self.rate, end * self.rate))
                continue
            v = np.asarray(values, dtype=np.float64).reshape(-1)
            if v.size != n * rate:
                raise GwtwinError(
                    f"witness {name}: expected {n * rate} samples ({n} s at {rate} Hz), found "
                    f"{v.size}; pass None for a channel at another rate"
                )
            finite = np.isfinite(v)
            if not finite.all():
                scale = self.rate / rate
                for i0, i1 in _runs(np.nonzero(~finite)[0]):
                    self.bad.append(
                        (
                            start * self.rate + math.floor(i0 * scale),
                            start * self.rate + math.ceil((i1 + 1) * scale),
                        )
                    )
            rows[name] = v
        self.strain.append(x)
        for name, v in rows.items():
            self.witness[name].append(v)
        self.end = end
        self._advance()

    def close_segment(self) -> list[Increment]:
        """End the open segment at the data received; every pending second is emitted."""
        if not self.open:
            return []
        self.seg_end = self.end
        self._advance()
        out = self.ready()
        return out

    # -- blocks -------------------------------------------------------------------------------
    def _advance(self) -> None:
        """Decide and predict every block the data now decide."""
        new, k = [], self._k_next
        last = (self.end if self.seg_end is None else self.seg_end) * self.rate
        while True:
            lo, _ = self._bounds(k)
            if self.seg_end is not None and lo > last:
                break
            status = self._status(k)
            if status is None:
                break
            self.ok[k] = status
            if status:
                new.append(k)
            k += 1
        self._k_next = k
        if new:
            for k, p in zip(new, self._predict(new, provisional=False), strict=True):
                self.blocks[k] = p

    def _conditioned(self, a: int, b: int) -> torch.Tensor:
        """The witnesses over GPS ``[a, b)`` conditioned (NaN/inf as 0: their blocks are off)."""
        blocks = [
            Block(
                torch.as_tensor(
                    np.nan_to_num(self.witness[w.name].view(a, b), posinf=0.0, neginf=0.0)
                )[None],
                a * NS,
                float(w.sample_rate),
                (w.name,),
                (w.unit,),
            )
            for w in self.model.spec.witnesses
        ]
        return condition_witnesses(blocks, self.model.spec, dtype=self.grid.dtype)

    def _windows(self, ks: list[int], provisional: bool) -> torch.Tensor:
        """Conditioned windows ``[len(ks), features, window]`` of blocks ``ks``, from one
        conditioning of the buffers over them (the future zero when provisional)."""
        lo, hi = self._bounds(min(ks))[0], self._bounds(max(ks))[1]
        a = max(lo // self.rate, self.seg_start)
        b = min(-(-hi // self.rate), self.end)
        x = self._conditioned(a, b)
        x0 = a * self.rate
        need_lo = min(ks) * self.hop - self.margin
        need_hi = (max(ks) + 1) * self.hop + self.margin
        left = max(x0 - need_lo, 0)  # provisional only: a window inside the segment has data
        right = max(need_hi - (x0 + x.shape[-1]), 0)
        if left or right:
            x = torch.nn.functional.pad(x, (left, right))
            x0 -= left
        size = self.hop + 2 * self.margin
        starts = [k * self.hop - self.margin - x0 for k in ks]
        return torch.stack([x[:, i : i + size] for i in starts])

    def _window(self, k: int, provisional: bool) -> torch.Tensor:
        """Conditioned window of block ``k`` alone."""
        return self._windows([k], provisional)[0]

    def _predict(self, ks: list[int], provisional: bool) -> torch.Tensor:
        if provisional:  # recomputed every second: one conditioning for all of them
            windows = self._windows(ks, True)
        else:  # each block from its own span, whatever else arrived with it
            windows = torch.stack([self._window(k, False) for k in ks])
        return self.grid.predict_blocks(windows)

    # -- emitting -----------------------------------------------------------------------------
    def ready(self) -> list[Increment]:
        """Every second that can be emitted now, in order."""
        out = []
        while self.next_out is not None and self.next_out < self.end:
            inc = self._emit(self.next_out)
            if inc is None:
                break
            out.append(inc)
            self.next_out += 1
        self._trim()
        return out

    def _emit(self, s: int) -> Increment | None:
        out_lo = s * self.rate - self.colour_edge
        out_hi = (s + 1) * self.rate + self.colour_edge
        ext_lo, ext_hi = self.grid.decision_span(out_lo, out_hi)
        k_lo, k_hi = ext_lo // self.hop, (ext_hi - 1) // self.hop
        strain_hi = -(-(ext_hi + self.grid.strain_edge) // self.rate)  # whole s the decision needs
        limit = self.end if self.seg_end is None else self.seg_end
        early = False
        if self.grid.decision is not None and strain_hi > limit:
            waiting = self.lookahead is None or self.end < s + 1 + self.lookahead
            if self.seg_end is None and waiting:
                return None
            early = self.seg_end is None  # provisional: the strain's future is not known yet
        ok, guessed = {}, set()
        for k in range(k_lo - 1, k_hi + 2):
            status = self.ok.get(k)
            if status is None:
                status = self._status(k)
            if status is None:
                if self.lookahead is None or self.end < s + 1 + self.lookahead:
                    return None
                lo, hi = self._bounds(k)
                status = lo >= self.seg_start * self.rate and not self._bad_overlap(lo, hi)
                guessed.add(k)
            ok[k] = status
        ks = [k for k in range(k_lo, k_hi + 1) if ok[k]]
        if ks:
            todo = [k for k in ks if k in guessed]
            fresh = dict(zip(todo, self._predict(todo, True), strict=True)) if todo else {}
            pred = torch.stack([fresh[k] if k in fresh else self.blocks[k] for k in ks])
        else:
            pred = None
        p_ext = self.grid.assemble(ks, pred, ok, ext_lo, ext_hi)
        applied = _active(ks, self.hop, self.rate, s, s + 1)
        strain_block = self._strain_for(ext_lo) if self.grid.decision is not None else None
        p, applied, decisions = self.grid.apply_decision(
            p_ext, ext_lo, ext_hi, strain_block, s, s + 1, applied
        )
        whitened, strain = self.grid.colour(p, s)
        raw = Block(
            torch.as_tensor(self.strain.view(s, s + 1))[None],
            s * NS,
            float(self.strain_rate),
            (self.strain_channel,),
            (self.model.spec.strain_unit,),
        )
        bad = [
            (max(b0 / self.rate, s), min(b1 / self.rate, s + 1))
            for b0, b1 in self.bad
            if b0 < (s + 1) * self.rate and b1 > s * self.rate
        ]
        return Increment(
            s,
            s + 1,
            raw,
            strain,
            whitened,
            applied,
            bad,
            provisional=bool(guessed) or early,
            decisions=decisions,
        )

    def _strain_for(self, ext_lo: int) -> Block:
        """The buffered raw strain from the earliest second the decision of ``ext_lo..`` needs
        to the data received (the decision marks what lies beyond as unknown)."""
        a = max(self.strain.t0, (ext_lo - self.grid.strain_edge) // self.rate)
        return Block(
            torch.as_tensor(self.strain.view(a, self.end))[None],
            a * NS,
            float(self.strain_rate),
            (self.strain_channel,),
            (self.model.spec.strain_unit,),
        )

    def _trim(self) -> None:
        """Forget what no later second needs (buffers keep ``context + 1`` s of history)."""
        if self.next_out is None:
            return
        keep = max(self.seg_start, self.next_out - self.context_seconds - 1)
        self.strain.trim(keep)
        for series in self.witness.values():
            series.trim(keep)
        out_lo = self.next_out * self.rate - self.colour_edge
        k_min = self.grid.decision_span(out_lo, out_lo + 1)[0] // self.hop - 1
        for k in [k for k in self.blocks if k < k_min]:
            del self.blocks[k]
        for k in [k for k in self.ok if k < k_min]:
            del self.ok[k]
        self.bad = [(a, b) for a, b in self.bad if b > keep * self.rate]

    # -- hand-over ----------------------------------------------------------------------------
    def history(self) -> tuple[int, np.ndarray, dict[str, np.ndarray]]:
        """The buffered raw data from their earliest common second: ``(t0, strain, {channel:
        samples})`` (what a new model's engine is primed with at a swap)."""
        t0 = max([self.strain.t0] + [s.t0 for s in self.witness.values()])
        witnesses = {c: s.view(t0, self.end) for c, s in self.witness.items()}
        return t0, self.strain.view(t0, self.end), witnesses
