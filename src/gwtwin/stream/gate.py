"""The safety gate of ``gwtwin stream``: stop subtracting wherever the model makes strain worse.

Online cleaning writes ``cleaned = raw - gain * prediction`` one increment (typically 1 s) at a
time; :class:`SafetyGate` chooses ``gain`` (per sample, in [0, 1]) from the data alone. Pure
numpy/scipy, no I/O; the whole state is in :meth:`SafetyGate.state_dict` (JSON-able), so a service
restarted from a checkpoint makes bit-identical decisions. The measurements (:func:`band_powers`,
:func:`band_power_ratio`, :func:`increment_band_power`, :func:`octave_bands`) are public and
independent of the streaming loop, for offline "do no harm" use.

Semantics
---------
* Where to subtract is first decided by offline cleaning's own rule, inside the engine
  (:mod:`gwtwin.infer.decide`: per 1 s unit and octave band, only where the whitened strain's
  power drops significantly), so the stream equals offline cleaning; this gate is the
  service's second line, on the net effect over a window. The decision for increment
  ``[t, t + T)`` uses the data up to ``t + T`` and applies to that same increment. Two
  checks, both on the *ungated* prediction (what the decided model would do, so that the
  gate can tell when the model is trustworthy again):

  - **ASD ratio over the window**: ``cleaned = raw - prediction`` over the sliding ``window`` s
    ending with this increment; per band ``sqrt(band_power(cleaned) / band_power(raw))``. A band
    is *active* when the prediction's band power is at least ``active_fraction`` of raw's;
    ``asd_ratio`` is the largest ratio over active bands (nan if none). It disables above
    ``max_asd_ratio``. Until the window holds ``window`` s it uses what it has, at least
    ``fftlength`` s (one Welch segment); with less (after a gap, or increments shorter than
    ``fftlength``) there is no window measurement: it neither disables nor counts to resume. The
    ratio is a net measure over the window: a large glitch cleaned well can offset noise the
    model added elsewhere in the same window (the glitch check below sees each increment alone).
  - **Claimed glitch**: when the prediction's power in the model's band over this increment alone
    is at least ``glitch_fraction`` of raw's, it disables if the cleaned power there exceeds raw's
    times ``max_glitch_ratio``: a model scaled x10 is caught in its first substantial increment.

* Starts enabled. A disabled gate re-enables when, for ``resume_after`` consecutive increments
  (the current one included), every active band is at or below ``resume_asd_ratio`` (vacuously
  when none is active) and no claimed glitch is made worse; between the thresholds it stays off.
* Gain: constant (1 or 0) over an increment where the state does not change; where it changes,
  half-Hann ``g0 + (g1 - g0) (1 - cos(pi i / m)) / 2`` over the first ``m = round(taper * rate)``
  samples (the first keeps the previous ``g0``), then exactly ``g1``: output == raw when off.
* ``GateConfig.enabled = False`` is monitoring only: the state machine runs and every metric and
  reason is reported (``enabled`` is the state it would be in), but ``gain`` is always 1.
* Increments come in time order without overlap; a gap (over half a sample) clears the history,
  which holds at most ``window`` s of raw and prediction; the state carries over.

Welch estimates: Hann segments of ``fftlength`` s overlapping by half, no detrending, the **mean**
of the periodograms (:func:`scipy.signal.welch`, ``average="mean"``), segments aligned to the end
of the data. Mean, not median: a safety gate must see harm done in one segment (the median would
discard a glitch the model added in one segment of fifteen), and with the mean a band's power is
a squared Euclidean norm ``||x||^2`` of the data (sum of squares of linear functionals), which
gives the exact bound below; the median's is not.

Why the default thresholds are not tripped by estimation noise
--------------------------------------------------------------
The ratio compares two *correlated* estimates (same window, same segments): ``ratio =
||R - P|| / ||R||`` for raw ``R`` and prediction ``P``. By the triangle inequality, exactly,
``|ratio - 1| <= ||P|| / ||R|| = sqrt(rho)`` (``rho``: prediction/raw band power), whatever the
chi^2 scatter of each estimate; for ``P`` independent of ``R``, ``ratio ~ 1 + rho / 2 +-
sqrt(rho / D)`` (``D ~ 2 x bandwidth x window`` degrees of freedom): it moves by about the
prediction/raw power ratio. Hence:

* a band whose prediction's ASD is under 5 % of raw's (``rho < 2.5e-3``) can never exceed 1.05;
  inactive bands (``rho < 1e-3``) move by at most 0.032 and are left out so as not to hold up
  resuming at 1.01;
* a model adding independent noise exceeds 1.05 when it adds over ~10 % of raw's power in a band
  (``rho > 0.1025``: 32 % of raw's ASD), and resumes at 1.01 when it adds under 2 %;
* an honest model ``P = a C`` (``R = N + C``, ``0 < a <= 1``) exceeds 1.05 only if the noise
  anti-correlates with the coupling: for ``a = 1``, ``cos(N, C) < -(0.0930 + s^2) / (2 s)``
  (``s = ||C|| / ||N||``), at least 0.305 in magnitude; ``cos`` scatters by ``1 / sqrt(D)``: a
  7 sigma event over 8 s in 32-64 Hz (D ~ 512), 3.9 sigma in 10-20 Hz, 2.4 sigma in 32-64 Hz in
  the first second after a start or a gap (D ~ 64).

A single Welch ASD estimate, by contrast, scatters by ``1 / sqrt(2 D)`` (7 % in 8-16 Hz over 8 s):
two *independent* ones would cross 1.05 in many windows (``tests/stream/test_gate.py`` checks).

Claimed glitch (one increment, ``D = 2 B T``, ``B`` the model's bandwidth, ``T`` the increment):
``P = a C`` makes the increment louder only when ``<N, C> < -(1 - a / 2) ||C||^2``; a claim needs
``a^2 ||C||^2 >= 0.1 ||N + C||^2``, so in white noise this is a ``sqrt(D) / 6`` sigma event for
``a = 1`` (5 sigma for 450 Hz and 1 s; 18 sigma for ``a = 0.5``), less when raw's in-band power is
concentrated where the glitch is, or for short increments. ``P = 10 C`` makes it louder by
``80 ||C||^2`` and is claimed once ``||C||^2 >= 1e-3 ||N||^2``. The increment's power uses a Tukey
window (5 % cosine ramps each end), not Hann, so that a glitch anywhere but the outer ~50 ms of a
1 s increment counts in full; its wider leakage adds out-of-band raw power equally to raw and
cleaned, which can only make the check less sensitive, not trip it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import welch
from scipy.signal.windows import tukey

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.stream.config import GateConfig

__all__ = [
    "GateConfig",
    "GateDecision",
    "SafetyGate",
    "band_power_ratio",
    "band_powers",
    "increment_band_power",
    "octave_bands",
]

#: total fraction of an increment under the cosine ramps of the Tukey window of the glitch check
INCREMENT_TUKEY_ALPHA = 0.1
_STATE_VERSION = 1


@dataclass
class GateDecision:
    """What the gate decided for one increment.

    Attributes
    ----------
    gps : float
        Start of the increment, GPS s.
    gain : numpy.ndarray
        Per sample, in [0, 1], the factor applied to the prediction: ``raw - gain * prediction``.
    enabled, changed : bool
        State at the end of the increment (with ``GateConfig.enabled = False``: the state it would
        be in, ``gain`` being 1 regardless), and whether it changed here (the gain then ramps).
    asd_ratio : float
        Largest cleaned/raw ASD ratio over the active bands over the window; nan if none active.
    band_ratios : dict[str, float]
        ``"lo-hi"`` (Hz) -> ASD ratio of every band (active or not; nan if not measured).
    glitch_ratio : float or None
        Cleaned/raw in-band power of this increment when it is a claimed glitch, else None.
    reason : str
        ``""`` when enabled, else why it is disabled.
    disabled_seconds : float
        Time in this increment where ``gain < 1``, s.
    active_bands : list[str]
        The bands where the model acts over the window (``"lo-hi"``).
    """

    gps: float
    gain: np.ndarray
    enabled: bool
    changed: bool
    asd_ratio: float
    band_ratios: dict[str, float]
    glitch_ratio: float | None
    reason: str
    disabled_seconds: float
    active_bands: list[str]


# -- measurements ---------------------------------------------------------------------------------
def octave_bands(lo: float, hi: float) -> list[tuple[float, float]]:
    """Octave bands ``[lo 2^k, lo 2^(k+1))`` covering ``[lo, hi)``, Hz.

    The last band ends at ``hi``; when it would be narrower than half an octave
    (``hi / edge < sqrt(2)``) it is merged into the one before. ``octave_bands(10, 460)`` is
    10-20, 20-40, 40-80, 80-160, 160-320, 320-460.
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ConfigError(f"octave bands need 0 < lo < hi (finite, Hz), found lo={lo}, hi={hi}")
    edges = [float(lo)]
    while edges[-1] * 2 < hi:
        edges.append(edges[-1] * 2)
    if len(edges) > 1 and hi / edges[-1] < math.sqrt(2):
        edges.pop()
    edges.append(float(hi))
    return list(zip(edges[:-1], edges[1:], strict=True))


def _band_masks(freqs: np.ndarray, bands: Sequence[tuple[float, float]], what: str) -> np.ndarray:
    masks = np.array([(freqs >= lo) & (freqs < hi) for lo, hi in bands], dtype=bool)
    for (lo, hi), mask in zip(bands, masks, strict=True):
        if not mask.any():
            df = freqs[1] - freqs[0] if freqs.size > 1 else float("nan")
            raise GwtwinError(
                f"band {lo:g}-{hi:g} Hz holds no frequency bin of {what} (resolution {df:g} Hz)"
            )
    return masks


def band_powers(
    x, sample_rate: float, bands: Sequence[tuple[float, float]], *, fftlength: float
) -> np.ndarray:
    """Mean-square amplitude of ``x`` in each band, from Welch's mean PSD.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Series sampled at ``sample_rate``; at least ``fftlength`` s long.
    sample_rate : float
        Hz.
    bands : sequence of (float, float)
        ``[lo, hi)`` per band, Hz.
    fftlength : float
        Welch segment length, s (a whole number of samples).

    Returns
    -------
    numpy.ndarray, shape (..., len(bands))
        ``sum(PSD[lo <= f < hi]) * df`` in units of ``x`` squared, with
        ``scipy.signal.welch(x, fs, window="hann", nperseg=m, noverlap=m // 2, detrend=False,
        average="mean")``, ``m = fftlength * sample_rate``, over the last ``n - (n - m) % hop``
        samples (``hop = m - m // 2``) so that the segments end with the data.
    """
    x = np.asarray(x, dtype=np.float64)
    nperseg = round(fftlength * sample_rate)
    if nperseg < 2 or abs(nperseg - fftlength * sample_rate) > 1e-6:
        raise GwtwinError(
            f"fftlength={fftlength} s is not a whole number (>= 2) of samples at {sample_rate} Hz"
        )
    n = x.shape[-1]
    if n < nperseg:
        raise GwtwinError(
            f"{n} samples ({n / sample_rate:g} s) is shorter than one Welch segment "
            f"(fftlength={fftlength} s)"
        )
    hop = nperseg - nperseg // 2
    x = x[..., (n - nperseg) % hop :]
    kw = {"window": "hann", "noverlap": nperseg // 2, "detrend": False, "average": "mean"}
    freqs, psd = welch(x, sample_rate, nperseg=nperseg, **kw)
    masks = _band_masks(freqs, bands, f"{fftlength:g} s Welch segments")
    return (psd @ masks.T.astype(np.float64)) * (sample_rate / nperseg)


def band_power_ratio(
    raw, cleaned, sample_rate: float, bands: Sequence[tuple[float, float]], *, fftlength: float
) -> np.ndarray:
    """Cleaned/raw band power over the same span, per band (Welch mean, see :func:`band_powers`).

    The ASD ratio is its square root. inf where raw has no power and cleaned has, nan where
    neither has.
    """
    raw = np.asarray(raw, dtype=np.float64)
    cleaned = np.asarray(cleaned, dtype=np.float64)
    if raw.shape != cleaned.shape:
        raise GwtwinError(f"raw has shape {raw.shape} but cleaned has shape {cleaned.shape}")
    p = band_powers(np.stack([raw, cleaned]), sample_rate, bands, fftlength=fftlength)
    with np.errstate(divide="ignore", invalid="ignore"):
        return p[1] / p[0]


def increment_band_power(x, sample_rate: float, band: tuple[float, float]) -> np.ndarray:
    """Mean-square amplitude of a short stretch (one increment) in ``[lo, hi)`` Hz.

    One periodogram of the whole stretch under a Tukey window (``INCREMENT_TUKEY_ALPHA``: 5 %
    cosine ramps at each end), one-sided, summed over the band's bins times the bin width.
    ``x``: shape ``(..., n)``; returns shape ``(...)``, units of ``x`` squared.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    w = tukey(n, INCREMENT_TUKEY_ALPHA, sym=False)
    spec = np.abs(np.fft.rfft(x * w, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    (mask,) = _band_masks(freqs, [band], f"a {n}-sample increment")
    one_sided = np.where((freqs > 0) & ((freqs < sample_rate / 2) | (n % 2 == 1)), 2.0, 1.0)
    return (spec[..., mask] @ one_sided[mask]) / (n * np.sum(w**2))


# -- the gate -------------------------------------------------------------------------------------
def _name(band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g}"


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _decode(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s.encode("ascii")), dtype="<f8").astype(np.float64)


class SafetyGate:
    """Per-increment safety gate with explicit, checkpointable state.

    Parameters
    ----------
    config : GateConfig or mapping
        Thresholds.
    sample_rate : float
        Hz, of raw and prediction.
    band : (float, float)
        ``[lo, hi)`` Hz the model acts on (from its conditioning: the high-pass to ~0.9 of the
        model's Nyquist); the claimed-glitch check measures there and, with ``config.bands``
        None, octave bands over it are compared.
    """

    def __init__(self, config: GateConfig, sample_rate: float, band: tuple[float, float]):
        if not isinstance(config, GateConfig):
            config = GateConfig(**dict(config))
        self.config = config
        fs = float(sample_rate)
        if not (math.isfinite(fs) and fs > 0):
            raise ConfigError(f"sample_rate={sample_rate!r} Hz: need a positive finite rate")
        self.sample_rate = fs
        nyquist = fs / 2
        lo, hi = (float(v) for v in band)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            raise ConfigError(f"band=({lo:g}, {hi:g}) Hz: need 0 <= lo < hi")
        if hi > nyquist:
            raise ConfigError(
                f"band=({lo:g}, {hi:g}) Hz: the upper edge is above the Nyquist frequency "
                f"{nyquist:g} Hz (sample rate {fs:g} Hz)"
            )
        self.band = (lo, hi)
        if config.bands is None and lo <= 0:
            raise ConfigError(
                f"band=({lo:g}, {hi:g}) Hz starts at 0: octave bands need lo > 0; give "
                "bands explicitly"
            )
        self.bands = octave_bands(lo, hi) if config.bands is None else list(config.bands)
        self._nperseg = round(config.fftlength * fs)
        if self._nperseg < 2 or abs(self._nperseg - config.fftlength * fs) > 1e-6:
            raise ConfigError(
                f"fftlength={config.fftlength} s is not a whole number (>= 2) of samples at "
                f"{fs:g} Hz"
            )
        freqs = np.fft.rfftfreq(self._nperseg, 1.0 / fs)
        for i, (a, b) in enumerate(self.bands):
            if b > nyquist:
                raise ConfigError(
                    f"bands[{i}]=({a:g}, {b:g}) Hz: the upper edge is above the Nyquist "
                    f"frequency {nyquist:g} Hz (sample rate {fs:g} Hz)"
                )
            if not ((freqs >= a) & (freqs < b)).any():
                raise ConfigError(
                    f"bands[{i}]=({a:g}, {b:g}) Hz holds no frequency bin at the resolution "
                    f"1 / fftlength = {1 / config.fftlength:g} Hz"
                )
        self._names = [_name(b) for b in self.bands]
        self._nwindow = max(round(config.window * fs), self._nperseg)
        self._ntaper = round(config.taper * fs)
        self._enabled = True
        self._streak = 0
        self._trigger = ""
        self._since: float | None = None
        self._next_gps: float | None = None
        self._raw = np.zeros(0)
        self._pred = np.zeros(0)

    # -- one increment ----------------------------------------------------------------------------
    def _series(self, x, name: str, gps: float) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise GwtwinError(
                f"{name} at GPS {gps}: expected a non-empty 1-D array, found {a.shape}"
            )
        if not np.isfinite(a).all():
            bad = int(np.flatnonzero(~np.isfinite(a))[0])
            raise GwtwinError(
                f"{name} at GPS {gps}: non-finite value at sample {bad} "
                f"(GPS {gps + bad / self.sample_rate})"
            )
        return a

    def step(self, gps: float, raw, prediction) -> GateDecision:
        """Decide the gain of the increment starting at ``gps`` (GPS s).

        ``raw`` and ``prediction`` are the increment's raw strain and the model's (ungated)
        prediction, same length, at ``sample_rate``. Raises :class:`~gwtwin.errors.GwtwinError`
        on mismatched lengths, non-finite values or an increment that overlaps the previous one,
        and :class:`~gwtwin.errors.ConfigError` when ``taper`` is longer than the increment; the
        state is unchanged when it raises.
        """
        cfg, fs = self.config, self.sample_rate
        gps = float(gps)
        raw = self._series(raw, "raw", gps)
        pred = self._series(prediction, "prediction", gps)
        n = raw.size
        if pred.size != n:
            raise GwtwinError(
                f"raw has {n} samples but prediction has {pred.size} at GPS {gps}: they must "
                "cover the same increment"
            )
        if self._ntaper > n:
            raise ConfigError(
                f"taper={cfg.taper} s is longer than the increment at GPS {gps} "
                f"({n / fs:g} s: {n} samples at {fs:g} Hz)"
            )
        gap = False
        if self._next_gps is not None:
            tol = 0.5 / fs
            if gps < self._next_gps - tol:
                raise GwtwinError(
                    f"increment at GPS {gps} starts before the end of the previous one "
                    f"(GPS {self._next_gps}): increments must come in time order without overlap"
                )
            gap = gps > self._next_gps + tol
        inc = increment_band_power(np.stack([raw, raw - pred, pred]), fs, self.band)

        # -- from here on the state changes
        if gap:
            self._raw, self._pred = np.zeros(0), np.zeros(0)
        self._next_gps = gps + n / fs
        self._raw = np.concatenate([self._raw, raw])[-self._nwindow :].copy()
        self._pred = np.concatenate([self._pred, pred])[-self._nwindow :].copy()
        held = self._raw.size

        measured = held >= self._nperseg
        if measured:
            stack = np.stack([self._raw, self._raw - self._pred, self._pred])
            p = band_powers(stack, fs, self.bands, fftlength=cfg.fftlength)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.sqrt(p[1] / p[0])
                active = (p[2] > 0) & (p[2] >= cfg.active_fraction * p[0])
        else:
            ratios = np.full(len(self.bands), np.nan)
            active = np.zeros(len(self.bands), dtype=bool)
        asd_ratio = float(np.max(ratios[active])) if active.any() else float("nan")

        claimed = bool(inc[2] > 0 and inc[2] >= cfg.glitch_fraction * inc[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            glitch_ratio, claim = (float(inc[1] / inc[0]), float(inc[2] / inc[0]))
        glitch_ratio = glitch_ratio if claimed else None
        glitch_bad = glitch_ratio is not None and glitch_ratio > cfg.max_glitch_ratio

        causes = []
        if active.any() and asd_ratio > cfg.max_asd_ratio:
            over = [k for k in np.flatnonzero(active) if ratios[k] > cfg.max_asd_ratio]
            worst = max(over, key=lambda k: ratios[k])
            also = [self._names[k] for k in over if k != worst]
            causes.append(
                f"ASD ratio {ratios[worst]:.2f} > {cfg.max_asd_ratio:g} in {self._names[worst]} "
                f"Hz over the last {held / fs:g} s"
                + (f" (also {', '.join(also)} Hz)" if also else "")
            )
        if glitch_bad:
            causes.append(
                f"claimed glitch at GPS {gps:.3f}: cleaned power {glitch_ratio:.1f}x raw in "
                f"{_name(self.band)} Hz (prediction {claim:.2f}x raw; limit "
                f"{cfg.max_glitch_ratio:g}x)"
            )
        good = measured and not glitch_bad and bool(np.all(ratios[active] <= cfg.resume_asd_ratio))

        before = self._enabled
        if before and causes:
            self._enabled, self._streak = False, 0
            self._trigger, self._since = "; ".join(causes), gps
        elif not before:
            self._streak = self._streak + 1 if good else 0
            if self._streak >= cfg.resume_after:
                self._enabled, self._streak, self._trigger, self._since = True, 0, "", None
        changed = self._enabled != before

        g0, g1 = float(before), float(self._enabled)
        gain = np.full(n, g1 if cfg.enabled else 1.0)
        if cfg.enabled and changed and self._ntaper:
            u = 0.5 * (1.0 - np.cos(np.pi * np.arange(self._ntaper) / self._ntaper))
            gain[: self._ntaper] = g0 + (g1 - g0) * u

        reason = ""
        if not self._enabled:
            reason = self._trigger
            if not changed:
                reason += (
                    f" (disabled since GPS {self._since:.3f}; resumes after {cfg.resume_after} "
                    f"consecutive increments with every active band <= "
                    f"{cfg.resume_asd_ratio:g}: {self._streak}/{cfg.resume_after})"
                )
            if not cfg.enabled:
                reason = "monitoring only, subtraction not gated: " + reason
        return GateDecision(
            gps=gps,
            gain=gain,
            enabled=self._enabled,
            changed=changed,
            asd_ratio=asd_ratio,
            band_ratios={k: float(r) for k, r in zip(self._names, ratios, strict=True)},
            glitch_ratio=glitch_ratio,
            reason=reason,
            disabled_seconds=float(np.count_nonzero(gain < 1.0)) / fs,
            active_bands=[self._names[k] for k in np.flatnonzero(active)],
        )

    # -- checkpoints ------------------------------------------------------------------------------
    def _layout(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "band": list(self.band),
            "bands": [list(b) for b in self.bands],
            "window": self.config.window,
            "fftlength": self.config.fftlength,
        }

    def state_dict(self, *, history: bool = True) -> dict:
        """The gate's state, JSON-able (history as base64 little-endian float64).

        ``history=False`` leaves the window's samples out (a few hundred bytes instead of
        ``window * sample_rate * 16``): a service checkpointing every second restores the
        decision state from it and re-derives the samples with :meth:`remember`.
        """
        state = {
            "version": _STATE_VERSION,
            **self._layout(),
            "enabled": self._enabled,
            "streak": self._streak,
            "trigger": self._trigger,
            "disabled_since": self._since,
            "next_gps": self._next_gps,
        }
        if history:
            state.update(raw=_encode(self._raw), prediction=_encode(self._pred))
        return state

    def forget_history(self) -> None:
        """Empty the window's history (as a gap does); the decision state is kept."""
        self._raw, self._pred = np.zeros(0), np.zeros(0)

    def remember(self, gps: float, raw, prediction) -> None:
        """Put an increment into the window's history without deciding anything (re-deriving
        the history after :meth:`load_state_dict` of a state saved without it)."""
        raw = self._series(raw, "raw", float(gps))
        pred = self._series(prediction, "prediction", float(gps))
        if pred.size != raw.size:
            raise GwtwinError(
                f"raw has {raw.size} samples but prediction has {pred.size} at GPS {gps}"
            )
        self._raw = np.concatenate([self._raw, raw])[-self._nwindow :].copy()
        self._pred = np.concatenate([self._pred, pred])[-self._nwindow :].copy()

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (JSON round trip included).

        The sample rate, bands, window and fftlength must match this gate's (the other thresholds
        may differ: the restored gate applies its own); raises
        :class:`~gwtwin.errors.GwtwinError` naming what differs.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise GwtwinError(f"gate state: expected version {_STATE_VERSION}, found {found!r}")
        for key, mine in self._layout().items():
            if state.get(key) != mine:
                raise GwtwinError(
                    f"gate state: {key}={state[key]!r} does not match this gate's {mine!r}"
                )
        try:
            raw = _decode(state["raw"]) if "raw" in state else np.zeros(0)
            pred = _decode(state["prediction"]) if "prediction" in state else np.zeros(0)
            enabled, streak = bool(state["enabled"]), int(state["streak"])
            trigger, since, nxt = str(state["trigger"]), state["disabled_since"], state["next_gps"]
        except (KeyError, TypeError, ValueError) as exc:
            raise GwtwinError(f"gate state: malformed ({type(exc).__name__}: {exc})") from None
        if raw.size != pred.size or raw.size > self._nwindow:
            raise GwtwinError(
                f"gate state: history of {raw.size} raw and {pred.size} prediction samples; "
                f"expected equal lengths of at most {self._nwindow}"
            )
        self._raw, self._pred = raw, pred
        self._enabled, self._streak, self._trigger = enabled, streak, trigger
        self._since = None if since is None else float(since)
        self._next_gps = None if nxt is None else float(nxt)
