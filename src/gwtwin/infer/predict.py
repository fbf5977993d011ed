"""Streaming prediction on a global window grid: the same output whatever the chunking.

Offline cleaning walks a long span in chunks and the online service will walk it in 1 s steps;
both must subtract exactly the prediction a single pass over the whole span would.  Two things
make that true:

- **A global grid.**  The network's trusted central parts ("blocks", ``target_duration`` long)
  tile GPS time from GPS 0: block ``k`` covers model-rate samples ``[k hop, (k + 1) hop)`` of
  GPS time (``hop`` = target size), and is predicted from the window
  ``[k hop - margin, (k + 1) hop + margin)``.  Where a chunk starts does not move the windows.
- **Enough context.**  A chunk whose output is ``[a, b)`` conditions the witnesses over
  ``[a - P, b + P]`` (clipped to the data segment), with ``P = C + 2 hop + margin + edge``
  rounded up to whole seconds: ``edge`` is what conditioning corrupts at the ends of the data,
  ``C`` what colouring corrupts (``ceil(spec.edge_duration)``), one ``hop`` reaches the blocks the
  colouring filter sees and one more the neighbours that decide the tapers.  Inside that context
  every sample of the output depends on the data alone (conditioning and colouring are local
  filters), so chunks agree with one pass to float rounding.  ``P`` is also the latency the
  online service will have (20 s for the default model: 5 s edge, 2 s margin, 4 s hop).

A block is **predictable** when its window plus the conditioning edge lies inside the data
segment and holds no NaN/inf witness sample.  The whitened prediction is the concatenation of
predictable blocks, zero elsewhere; where a predictable run starts or ends (segment ends, gaps,
bad witness samples) the block is tapered with a half-Hann of ``taper`` seconds so the subtracted
signal does not switch on with a step.  The whitened prediction is coloured back to strain with
:func:`~gwtwin.signal.conditioning.uncondition_strain` and resampled to the strain rate.

**Attribution.**  With ``attribute=True`` every block is also predicted with each witness
removed (its conditioned rows set to their training mean, 0); the energy of ``p - p_without_c``
in 1/64 s bins says how much of the prediction channel ``c`` carries.  The veto names the witness
carrying most of a glitch's predicted power as its explaining witness.  For a model with a
linear stage the stage's share of ``p - p_without_c`` is exact and cheap (the convolutions of
``c``'s rows and products); the network passes with ``c`` removed are run only for blocks where
the network's own output carries at least ``attribution_threshold`` (whitened SNR^2), elsewhere
its share is taken as 0.  The choice is made per block, so any chunking gives the same result;
``attribution_threshold=0`` ablates every block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gwtwin.data import Block
from gwtwin.data.channels import prediction_channel
from gwtwin.errors import GwtwinError
from gwtwin.infer.decide import Decision, decide_span, span_needed
from gwtwin.models.twin import TwinModel
from gwtwin.signal.conditioning import condition_witnesses, uncondition_strain

NS = 1_000_000_000
BINS_PER_SECOND = 64  #: resolution of the attribution energies


@dataclass
class ChunkPrediction:
    """What :meth:`GridPredictor.predict_chunk` returns for an output span ``[a, b)``.

    Attributes
    ----------
    strain : Block
        The prediction in strain units at the strain rate over ``[a, b)`` (float64).
    whitened : Block
        The whitened prediction at the model rate over ``[a, b)`` (the predictor's precision).
    active : list of (float, float)
        GPS intervals of ``[a, b)`` where a prediction is applied (predictable blocks).
    energy : numpy.ndarray ``[n_bins]``
        Energy of the whitened prediction per 1/64 s bin over ``[a, b)``, before the subtraction
        decision (what the model tried to subtract).
    witness_energy : numpy.ndarray ``[n_witness, n_bins]`` or None
        Energy per bin of the part of the prediction each witness carries (``attribute``).
    """

    strain: Block
    whitened: Block
    active: list[tuple[float, float]]
    energy: np.ndarray
    witness_energy: np.ndarray | None = None
    n_windows: int = 0
    decisions: dict | None = None  #: per-unit decision rows (:data:`decide.UNIT_COLUMNS`)
    applied_energy: np.ndarray | None = None  #: energy per bin of what is subtracted


@dataclass
class GridPredictor:
    """Predict a model's strain noise on the global window grid (see the module docstring).

    Parameters
    ----------
    model : TwinModel
        A time-domain twin model.
    taper : float
        Half-Hann taper at the ends of every predictable run, s (at most one block).
    batch_size : int
        Windows per network call.
    attribute : bool
        Also predict with each witness removed, for the explaining-witness attribution.
    attribution_threshold : float
        Network-output energy per block (whitened SNR^2) from which the network's share is
        attributed by ablation, for models with a linear stage (0: every block).
    decision : Decision, optional
        Subtract only in the units where the whitened strain's power drops significantly
        (:mod:`gwtwin.infer.decide`); needs the strain (``predict_chunk(..., strain=)``) and
        adds ``2 unit_duration`` to the context.  None: subtract wherever a prediction exists.
    precision : {"float64", "float32"}
        Arithmetic of the conditioning and the network.  float64 (the default) makes every
        block's prediction independent of how windows are batched and of the thread count to
        float64 rounding, so chunked, one-pass and online (1 s) cleaning agree to ~1e-15; in
        float32 the CPU kernels round differently per batch shape and thread count (measured:
        1e-6 relative on the default model).  The network is trained in float32; evaluating
        it in float64 changes its output by ~3e-7 relative and costs ~1.3x per window.
    """

    model: TwinModel
    taper: float = 1.0
    batch_size: int = 16
    attribute: bool = True
    attribution_threshold: float = 1.0
    precision: str = "float64"
    decision: Decision | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        m = self.model
        if self.precision not in ("float64", "float32"):
            raise GwtwinError(f"precision must be 'float64' or 'float32', found {self.precision!r}")
        self.dtype = torch.float64 if self.precision == "float64" else torch.float32
        self.network = m.network
        if self.dtype == torch.float64:  # a float64 copy; the model's own stays as trained
            import copy

            self.network = copy.deepcopy(m.network).double().eval()
        if m.kind != "timeseries":
            raise GwtwinError(
                "cleaning needs a time-domain twin model (it gives a strain time series); "
                f"found a {m.kind!r} model"
            )
        rate = m.sample_rate
        if rate != round(rate):
            raise GwtwinError(f"the model rate must be a whole number of Hz, found {rate}")
        self.rate = int(round(rate))
        self.strain_rate = int(round(m.spec.strain_rate))
        self.hop = m.target_size
        self.margin = m.margin
        self.edge = m.edge_size
        self.colour_edge = math.ceil(m.spec.edge_duration) * self.rate
        if self.rate % BINS_PER_SECOND:
            raise GwtwinError(
                f"the model rate ({self.rate} Hz) must be a multiple of {BINS_PER_SECOND} Hz"
            )
        self.bin = self.rate // BINS_PER_SECOND
        ntaper = int(round(self.taper * self.rate))
        if not 0 <= ntaper <= self.hop:
            raise GwtwinError(
                f"taper must be in [0, target_duration = {m.target_duration:g}] s, found "
                f"{self.taper:g}"
            )
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ntaper) + 0.5) / max(ntaper, 1))
        self._rise = torch.as_tensor(ramp, dtype=self.dtype)
        if self.decision is not None and not self.decision.enabled:
            self.decision = None
        self.unit = self.decision.unit_size(self.rate) if self.decision else 0
        reach = self.colour_edge + 2 * self.hop + self.margin + self.edge
        if self.decision is not None:  # the units the output touches, and more each side
            u, more = self.unit, 1 + self.decision.reach + self.decision.local_units
            reach += (more + 1) * u if u > self.rate else more * u + (-self.colour_edge) % u
            reach += self.decision.filter_half(self.rate)
        self.context = math.ceil(reach / self.rate)  # whole seconds
        self.strain_edge = math.ceil(m.spec.condition_edge_duration * self.rate)

    # -- geometry -----------------------------------------------------------------------------
    @property
    def context_seconds(self) -> int:
        """Witness data needed each side of a chunk's output, s (the online latency)."""
        return self.context

    def witness_span(self, a: int, b: int, segment: tuple[int, int]) -> tuple[int, int]:
        """GPS seconds ``[lo, hi)`` of witness data to read for output ``[a, b)`` (whole s)."""
        return max(segment[0], a - self.context), min(segment[1], b + self.context)

    def predictable(self, k: int, segment_i: tuple[int, int], bad: list[tuple[int, int]]) -> bool:
        lo = k * self.hop - self.margin - self.edge
        hi = (k + 1) * self.hop + self.margin + self.edge
        if lo < segment_i[0] or hi > segment_i[1]:
            return False
        return not any(b0 < hi and b1 > lo for b0, b1 in bad)

    # -- running ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(
        self, witnesses, a: int, b: int, segment: tuple[int, int], strain: Block | None = None
    ) -> ChunkPrediction:
        """Prediction over ``[a, b)`` (GPS s) from witnesses over :meth:`witness_span`.

        Parameters
        ----------
        witnesses : sequence of Block
            The model's witness channels at their native rates, in model order, each covering
            exactly ``witness_span(a, b, segment)``; NaN/inf samples are allowed (the blocks they
            touch are not predicted).
        a, b : int
            Output span, whole GPS seconds, inside ``segment``.
        segment : (int, int)
            The contiguous data segment (whole GPS seconds) the chunk belongs to.
        strain : Block, optional
            The raw strain over :meth:`witness_span` (NaN/inf allowed), needed with a
            ``decision``: the subtraction is kept only where it lowers the strain's power.
        """
        if self.decision is not None and strain is None:
            raise GwtwinError(
                "the subtraction decision needs the raw strain over the witness span: pass "
                "strain= to predict_chunk (or build the predictor with decision=None)"
            )
        if not segment[0] <= a < b <= segment[1]:
            raise GwtwinError(
                f"chunk [{a}, {b}) must lie inside its data segment [{segment[0]}, {segment[1]})"
            )
        wa, wb = self.witness_span(a, b, segment)
        rows, bad = self.finite_rows(witnesses, wa, wb, (a, b))
        x = condition_witnesses(rows, self.model.spec, dtype=self.dtype)
        seg_i = (segment[0] * self.rate, segment[1] * self.rate)
        out_lo, out_hi = (a * self.rate - self.colour_edge, b * self.rate + self.colour_edge)
        ext_lo, ext_hi = self.decision_span(out_lo, out_hi)
        k_lo, k_hi = ext_lo // self.hop, (ext_hi - 1) // self.hop
        ok = {k: self.predictable(k, seg_i, bad) for k in range(k_lo - 1, k_hi + 2)}
        ks = [k for k in range(k_lo, k_hi + 1) if ok[k]]
        x0 = wa * self.rate
        windows = [
            x[:, k * self.hop - self.margin - x0 : (k + 1) * self.hop + self.margin - x0]
            for k in ks
        ]
        stacked = torch.stack(windows) if ks else None
        pred = self.predict_blocks(stacked) if ks else None
        p_ext = self.assemble(ks, pred, ok, ext_lo, ext_hi)
        p = p_ext[out_lo - ext_lo : out_hi - ext_lo]
        energy, witness_energy = None, None
        # attribution needs only the blocks the output reaches, not the decision's wider span
        hop = self.hop
        near = [i for i, k in enumerate(ks) if (k + 1) * hop > out_lo and k * hop < out_hi]
        if self.attribute and near:
            witness_energy = self._attribution(
                [ks[i] for i in near], stacked[near], pred[near], ok, out_lo, out_hi
            )
        core = p[self.colour_edge : -self.colour_edge]
        energy = _bin_energy(core, self.bin)
        if witness_energy is None and self.attribute:
            witness_energy = np.zeros((len(self.model.spec.witnesses), energy.size))
        applied = _active(ks, self.hop, self.rate, a, b)
        p, applied, decisions = self.apply_decision(p_ext, ext_lo, ext_hi, strain, a, b, applied)
        whitened, strain_pred = self.colour(p, a)
        applied_energy = energy if decisions is None else _bin_energy(whitened.data[0], self.bin)
        return ChunkPrediction(
            strain_pred,
            whitened,
            applied,
            energy,
            witness_energy,
            len(ks),
            decisions,
            applied_energy,
        )

    def apply_decision(self, p_ext, ext_lo: int, ext_hi: int, strain, a: int, b: int, applied):
        """The prediction over ``[a rate - colour_edge, b rate + colour_edge)`` with the
        decision's gain applied, the GPS intervals of ``[a, b)`` where something is subtracted,
        and the decision rows of the units starting in ``[a, b)`` (None without a decision).
        ``p_ext`` covers :meth:`decision_span` of that output, ``strain`` the raw strain."""
        out_lo, out_hi = a * self.rate - self.colour_edge, b * self.rate + self.colour_edge
        p = p_ext[out_lo - ext_lo : out_hi - ext_lo]
        if self.decision is None:
            return p, applied, None
        r = self.whitened_strain(strain, ext_lo, ext_hi)
        decided = decide_span(
            p_ext, r, out_lo, out_hi, self.decision, self.rate, self.model.spec.highpass
        )
        on = decided.gain.amax(0)
        core = on[self.colour_edge : on.numel() - self.colour_edge]
        rows = decided.rows(self.unit, self.rate, a, b)
        return decided.prediction, _on(core, self.rate, a, applied), rows

    def decision_span(self, lo: int, hi: int) -> tuple[int, int]:
        """Model-rate samples of prediction needed to output ``[lo, hi)`` (wider with a
        decision: the units it touches and two neighbours each side)."""
        if self.decision is None:
            return lo, hi
        return span_needed(lo, hi, self.unit, self.decision)

    def whitened_strain(self, strain: Block, lo: int, hi: int) -> torch.Tensor:
        """The raw strain whitened as the training target (float64, model rate) over
        model-rate samples ``[lo, hi)``, NaN where it is not known: outside ``strain``, within
        the conditioning edge of its ends and of any NaN/inf sample."""
        from gwtwin.signal.conditioning import condition_strain

        spec = self.model.spec
        data = strain.data[0].to(torch.float64)
        finite = torch.isfinite(data)
        x0 = round(strain.t0_ns * self.rate / NS)
        out = torch.full((hi - lo,), float("nan"), dtype=torch.float64)
        if not finite.any():
            return out
        clean = Block(
            torch.where(finite, data, torch.zeros_like(data))[None],
            strain.t0_ns,
            strain.sample_rate,
            (spec.strain_channel,),
            strain.units,
        )
        r = condition_strain(clean, spec)
        e = self.strain_edge
        r[:e] = float("nan")
        r[r.numel() - e :] = float("nan")
        if not finite.all():
            scale = self.rate / strain.sample_rate
            for i0, i1 in _runs(torch.nonzero(~finite).flatten().numpy()):
                s0 = max(math.floor(i0 * scale) - e, 0)
                s1 = min(math.ceil((i1 + 1) * scale) + e, r.numel())
                r[s0:s1] = float("nan")
        a0, a1 = max(lo, x0), min(hi, x0 + r.numel())
        if a1 > a0:
            out[a0 - lo : a1 - lo] = r[a0 - x0 : a1 - x0]
        return out

    def finite_rows(self, witnesses, wa: int, wb: int, chunk) -> tuple[list[Block], list]:
        """The witness Blocks over ``[wa, wb)`` with NaN/inf samples set to 0, and the model-rate
        sample intervals ``[(lo, hi)]`` those samples touch (the blocks they reach are not
        predicted).  Each Block must cover exactly ``[wa, wb)``."""
        rows, bad = [], []
        for blk in witnesses:
            if blk.t0_ns != wa * NS or blk.end_ns != wb * NS:
                raise GwtwinError(
                    f"witness {blk.channels[0]} covers GPS [{blk.span[0]}, {blk.span[1]}), "
                    f"expected [{wa}, {wb}) for the chunk [{chunk[0]}, {chunk[1]})"
                )
            data = blk.data
            finite = torch.isfinite(data[0])
            if not finite.all():
                idx = torch.nonzero(~finite).flatten().numpy()
                scale = self.rate / blk.sample_rate
                for i in _runs(idx):
                    bad.append(
                        (
                            wa * self.rate + math.floor(i[0] * scale),
                            wa * self.rate + math.ceil((i[1] + 1) * scale),
                        )
                    )
                data = torch.where(finite[None], data, torch.zeros_like(data))
            rows.append(Block(data, blk.t0_ns, blk.sample_rate, blk.channels, blk.units))
        return rows, bad

    def colour(self, p: torch.Tensor, a: int) -> tuple[Block, Block]:
        """The whitened prediction ``p`` over model-rate samples
        ``[a rate - colour_edge, b rate + colour_edge)`` as (whitened Block over ``[a, b)`` at the
        model rate, prediction in strain units over ``[a, b)`` at the strain rate)."""
        core = p[self.colour_edge : p.numel() - self.colour_edge]
        name = prediction_channel(self.model.spec.strain_channel)
        whitened = Block(core[None].clone(), a * NS, float(self.rate), (name,), ("",))
        coloured = uncondition_strain(p.to(torch.float64), self.model.spec)
        cut = self.colour_edge * self.strain_rate // self.rate
        strain = Block(
            coloured[cut : coloured.shape[-1] - cut][None],
            a * NS,
            float(self.strain_rate),
            (name,),
            (self.model.spec.strain_unit,),
        )
        return whitened, strain

    def predict_blocks(self, windows: torch.Tensor) -> torch.Tensor:
        """Central parts of the predictions of stacked windows ``[n, features, window]``:
        ``[n, hop]``, in the predictor's precision."""
        if self.dtype == torch.float32:
            return self.model.predict_windows(windows, batch_size=self.batch_size)
        net, n = self.network, self.batch_size
        device = next(net.parameters()).device
        with torch.no_grad():
            out = [
                net(windows[i : i + n].to(device, self.dtype)).cpu()
                for i in range(0, len(windows), n)
            ]
        return torch.cat(out)

    def _attribution(self, ks, stacked, pred, ok, out_lo: int, out_hi: int) -> np.ndarray:
        """Energy per bin of ``p - p_without_c`` for every witness ``c`` (module docstring)."""
        groups, offset = [], 0
        for w in self.model.spec.witnesses:
            groups.append(list(range(offset, offset + len(w.features))))
            offset += len(w.features)
        net = self.network
        linear = getattr(net, "linear_fitted", False) and hasattr(net, "linear_parts")
        if linear:
            device = next(net.parameters()).device
            tot, shares = [], []
            for i in range(0, len(stacked), self.batch_size):
                t, s = net.linear_parts(stacked[i : i + self.batch_size].to(device), groups)
                tot.append(t.cpu())
                shares.append(s.cpu())
            lin_total, lin_parts = torch.cat(tot), torch.cat(shares)
            network = (pred - lin_total).double().pow(2).sum(-1)
            ablate = torch.nonzero(network >= self.attribution_threshold).flatten()
        else:
            ablate = torch.arange(len(stacked))
        edge = self.colour_edge
        parts = []
        for c, group in enumerate(groups):
            diff = lin_parts[:, c].clone() if linear else torch.zeros_like(pred)
            if ablate.numel():
                cut = stacked[ablate].clone()
                cut[:, group] = 0
                diff[ablate] = pred[ablate] - self.predict_blocks(cut)
            d = self.assemble(ks, diff, ok, out_lo, out_hi)  # linear in the blocks: tapers too
            parts.append(_bin_energy(d[edge:-edge], self.bin))
        return np.stack(parts)

    def assemble(self, ks, pred, ok, out_lo: int, out_hi: int) -> torch.Tensor:
        """Whitened prediction over model-rate samples ``[out_lo, out_hi)`` from the blocks'
        central parts ``pred [len(ks), hop]``, tapered where a predictable run starts/ends."""
        p = torch.zeros(out_hi - out_lo, dtype=self.dtype)
        if not ks:
            return p
        nt = self._rise.numel()
        for k, block in zip(ks, pred, strict=True):
            block = block.clone()
            if nt and not ok[k - 1]:
                block[:nt] *= self._rise
            if nt and not ok[k + 1]:
                block[-nt:] *= self._rise.flip(0)
            lo, hi = k * self.hop - out_lo, (k + 1) * self.hop - out_lo
            s0, s1 = max(lo, 0), min(hi, p.numel())
            if s1 > s0:
                p[s0:s1] = block[s0 - lo : s1 - lo]
        return p


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` runs of consecutive indices."""
    if idx.size == 0:
        return []
    breaks = np.nonzero(np.diff(idx) > 1)[0]
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _bin_energy(p: torch.Tensor, size: int) -> np.ndarray:
    """Sum of squares of a model-rate series in bins of ``size`` samples."""
    x = p.to(torch.float64).numpy()
    return (x.reshape(-1, size) ** 2).sum(axis=1)


def _on(gain: torch.Tensor, rate: int, a: int, spans) -> list[tuple[float, float]]:
    """The parts of ``spans`` (GPS intervals) where ``gain`` (model rate, from GPS ``a``) > 0."""
    idx = torch.nonzero(gain > 0).flatten().numpy()
    out = []
    for i0, i1 in _runs(idx):
        lo, hi = a + i0 / rate, a + (i1 + 1) / rate
        for s0, s1 in spans:
            x0, x1 = max(lo, s0), min(hi, s1)
            if x1 > x0:
                out.append((x0, x1))
    return out


def _active(ks: list[int], hop: int, rate: int, a: int, b: int) -> list[tuple[float, float]]:
    """GPS intervals of ``[a, b)`` covered by the predicted blocks ``ks`` (merged)."""
    out: list[list[float]] = []
    for k in ks:
        lo, hi = max(k * hop / rate, a), min((k + 1) * hop / rate, b)
        if hi <= lo:
            continue
        if out and abs(out[-1][1] - lo) < 1e-9:
            out[-1][1] = hi
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]
