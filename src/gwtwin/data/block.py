"""The in-memory unit of gwtwin: a stack of channels sharing one GPS start and one sample rate.

A :class:`Block` never travels without its GPS start (exact, integer nanoseconds), its sample rate
and its channel names, so no later step can lose them.  Channels recorded at different native rates
are never stacked silently: :meth:`Block.from_timeseriesdict` refuses them unless a target
``sample_rate`` is given, in which case each channel is resampled explicitly (anti-aliased,
polyphase) and the resampling is recorded in :attr:`Block.history`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.errors import GwtwinError

NS = 1_000_000_000


class SampleRateMismatchError(GwtwinError):
    """Channels or files disagree on a sample rate."""


def to_ns(gps: Any) -> int:
    """Convert a GPS time to exact integer nanoseconds.

    Accepts ``int`` (seconds), ``LIGOTimeGPS`` (either flavour), ``Decimal``, ``str`` and ``float``.
    Floats are rounded to the nearest nanosecond (a float64 GPS time near 1.4e9 s is only good to
    ~0.2 microseconds, which is why gwtwin stores integers).
    """
    if isinstance(gps, bool):
        raise GwtwinError(f"GPS time must be a number of seconds, found {gps!r}")
    if isinstance(gps, (int, np.integer)):
        return int(gps) * NS
    if hasattr(gps, "gpsSeconds") and hasattr(gps, "gpsNanoSeconds"):
        return int(gps.gpsSeconds) * NS + int(gps.gpsNanoSeconds)
    if hasattr(gps, "ns") and callable(gps.ns):  # ligotimegps.LIGOTimeGPS
        return int(gps.ns())
    if hasattr(gps, "value") and hasattr(gps, "unit"):  # astropy Quantity in seconds
        return to_ns(float(gps.to("s").value))
    if isinstance(gps, (str, Decimal)):
        try:
            return int((Decimal(str(gps)) * NS).to_integral_value())
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise GwtwinError(f"cannot read GPS time from {gps!r}") from exc
    if isinstance(gps, (float, np.floating)):
        if not math.isfinite(gps):
            raise GwtwinError(f"GPS time must be finite, found {gps!r}")
        return int(round(Decimal(repr(float(gps))) * NS))
    raise GwtwinError(f"cannot read GPS time from {gps!r} (type {type(gps).__name__})")


def ns_to_gps(ns: int):
    """Exact :class:`lal.LIGOTimeGPS` for integer nanoseconds."""
    from lal import LIGOTimeGPS

    return LIGOTimeGPS(int(ns) // NS, int(ns) % NS)


def _rate_fraction(rate: float) -> Fraction:
    return Fraction(rate).limit_denominator(1_000_000)


def _check_rate(sample_rate: Any) -> float:
    try:
        rate = float(getattr(sample_rate, "value", sample_rate))
    except (TypeError, ValueError) as exc:
        raise GwtwinError(f"sample_rate must be a number in Hz, found {sample_rate!r}") from exc
    if not math.isfinite(rate) or rate <= 0:
        raise GwtwinError(f"sample_rate must be a positive number of Hz, found {sample_rate!r}")
    return rate


@dataclass(frozen=True, eq=False)  # eq on tensors is elementwise: Blocks compare by identity
class Block:
    """A ``[channel, time]`` tensor with exact GPS start, one sample rate and channel names.

    Parameters
    ----------
    data : torch.Tensor or numpy.ndarray
        Samples, shape ``[channel, time]`` (a 1-D array is taken as one channel).
    t0_ns : int
        GPS time of the first sample, integer nanoseconds (use :meth:`Block.create` to give any
        GPS type).
    sample_rate : float
        Samples per second, Hz, shared by every channel.
    channels : sequence of str
        Full channel names (``V1:ENV_CEB_MAG_N``), one per row, unique.
    units : sequence of str, optional
        Physical unit of each channel (``"strain"``, ``"T"``, ``"um"``...); empty when unknown.
    history : tuple of str
        What was done to the data (resampling, filtering), in order.
    """

    data: torch.Tensor
    t0_ns: int
    sample_rate: float
    channels: tuple[str, ...]
    units: tuple[str, ...] = ()
    history: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        data = self.data
        if isinstance(data, np.ndarray):
            data = torch.from_numpy(np.ascontiguousarray(data))
        elif not isinstance(data, torch.Tensor):
            data = torch.as_tensor(np.asarray(data))
        if data.ndim == 1:
            data = data.unsqueeze(0)
        if data.ndim != 2:
            raise GwtwinError(
                f"Block data must have shape [channel, time], found {data.ndim} dimensions "
                f"{tuple(data.shape)}"
            )
        channels = (self.channels,) if isinstance(self.channels, str) else tuple(self.channels)
        if len(channels) != data.shape[0]:
            raise GwtwinError(
                f"Block has {data.shape[0]} rows of data but {len(channels)} channel names"
            )
        if len(set(channels)) != len(channels):
            dupes = sorted({c for c in channels if channels.count(c) > 1})
            raise GwtwinError(f"duplicate channel names in Block: {dupes}")
        units = tuple(self.units) if self.units else ("",) * len(channels)
        if len(units) != len(channels):
            raise GwtwinError(f"Block has {len(channels)} channels but {len(units)} units")
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "sample_rate", _check_rate(self.sample_rate))
        object.__setattr__(self, "t0_ns", int(self.t0_ns))
        object.__setattr__(self, "history", tuple(self.history))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        data,
        t0,
        sample_rate: float,
        channels: Sequence[str] | str,
        units: Sequence[str] | None = None,
    ) -> Block:
        """Build a Block from any GPS type (int, float, str, ``LIGOTimeGPS``)."""
        return cls(data, to_ns(t0), sample_rate, channels, tuple(units or ()))

    # -- time axis ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of samples per channel."""
        return int(self.data.shape[1])

    @property
    def t0(self):
        """GPS start as an exact :class:`lal.LIGOTimeGPS`."""
        return ns_to_gps(self.t0_ns)

    @property
    def duration(self) -> float:
        """Length in seconds (``size / sample_rate``)."""
        return self.size / self.sample_rate

    @property
    def duration_ns(self) -> int:
        """Length in integer nanoseconds (exact when ``1e9 / sample_rate`` is an integer)."""
        return int(round(Fraction(self.size) / _rate_fraction(self.sample_rate) * NS))

    @property
    def end_ns(self) -> int:
        """GPS time just after the last sample, integer nanoseconds."""
        return self.t0_ns + self.duration_ns

    @property
    def span(self) -> tuple[float, float]:
        """``(start, end)`` in float GPS seconds, for display and segment lists."""
        return self.t0_ns / NS, self.end_ns / NS

    @property
    def times(self) -> np.ndarray:
        """GPS time of each sample, float64 seconds: ``t0 + arange(n) / sample_rate``.

        The integer part is split off before adding the offsets so that the float64 result is
        as accurate as float64 allows at GPS ~1e9 s (~0.1 microsecond).
        """
        whole, frac_ns = divmod(self.t0_ns, NS)
        return whole + (frac_ns / NS + np.arange(self.size) / self.sample_rate)

    def index_of(self, gps, *, side: str = "left") -> int:
        """Sample index of a GPS time.

        ``side="left"`` gives the first sample at or after ``gps``; ``side="right"`` the first
        sample strictly after the last one before ``gps`` (so ``[index_of(a), index_of(b))``
        holds the samples in ``[a, b)``).  Times that fall within 1 ns of a sample are taken as
        on that sample.
        """
        offset = Fraction(to_ns(gps) - self.t0_ns, NS) * _rate_fraction(self.sample_rate)
        # within 1 ns of a sample counts as on it
        tol = Fraction(1, NS) * _rate_fraction(self.sample_rate)
        nearest = round(offset)
        if abs(offset - nearest) <= tol:
            return int(nearest)
        return int(math.ceil(offset))

    # -- channels -----------------------------------------------------------------------------
    def channel_index(self, channel: str) -> int:
        try:
            return self.channels.index(channel)
        except ValueError:
            raise GwtwinError(
                f"channel {channel!r} is not in this Block; it holds {list(self.channels)}"
            ) from None

    def __getitem__(self, channel: str) -> torch.Tensor:
        """The samples of one channel, by name."""
        return self.data[self.channel_index(channel)]

    def select(self, channels: Iterable[str]) -> Block:
        """A Block with only the given channels, in the given order."""
        channels = [channels] if isinstance(channels, str) else list(channels)
        idx = [self.channel_index(c) for c in channels]
        return self.replace(
            data=self.data[idx],
            channels=tuple(channels),
            units=tuple(self.units[i] for i in idx),
        )

    def replace(self, **changes) -> Block:
        """A copy with some fields changed (``data``, ``t0_ns``, ``history``...)."""
        fields = {
            "data": self.data,
            "t0_ns": self.t0_ns,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "units": self.units,
            "history": self.history,
        }
        fields.update(changes)
        return Block(**fields)

    # -- slicing ------------------------------------------------------------------------------
    def crop(self, start=None, end=None) -> Block:
        """The samples with GPS time in ``[start, end)``.

        Raises if the requested span is not inside the Block, naming both spans.
        """
        i0 = 0 if start is None else self.index_of(start)
        i1 = self.size if end is None else self.index_of(end)
        if i0 < 0 or i1 > self.size or i1 < i0:
            req = (
                (self.span[0] if start is None else to_ns(start) / NS),
                (self.span[1] if end is None else to_ns(end) / NS),
            )
            raise GwtwinError(
                f"cannot crop to GPS [{req[0]}, {req[1]}): the Block covers "
                f"[{self.span[0]}, {self.span[1]})"
            )
        return self.isel(i0, i1)

    def isel(self, i0: int | None, i1: int | None) -> Block:
        """Samples ``i0:i1`` by index, with the GPS start moved accordingly.

        Indices follow Python slicing (negative ones count from the end, out-of-range ones are
        clipped), and the GPS start always moves to the first sample kept.
        """
        # normalise first: a negative i0 must move t0 forward from the end, not backwards
        i0, i1, _ = slice(i0, i1).indices(self.size)
        i1 = max(i0, i1)
        shift_ns = int(round(Fraction(i0) / _rate_fraction(self.sample_rate) * NS))
        return self.replace(data=self.data[:, i0:i1], t0_ns=self.t0_ns + shift_ns)

    # -- numbers ------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The samples as a numpy array ``[channel, time]`` (no copy on CPU)."""
        return self.data.detach().cpu().numpy()

    def nonfinite(self) -> dict[str, int]:
        """Number of NaN/inf samples per channel, only for channels that have any."""
        bad = (~torch.isfinite(self.data)).sum(dim=1)
        return {c: int(n) for c, n in zip(self.channels, bad.tolist(), strict=True) if n}

    def to(self, *args, **kwargs) -> Block:
        """Move or cast the data like :meth:`torch.Tensor.to`."""
        return self.replace(data=self.data.to(*args, **kwargs))

    # -- gwpy interop -------------------------------------------------------------------------
    def to_timeseriesdict(self):
        """Convert to a :class:`gwpy.timeseries.TimeSeriesDict` (exact GPS start)."""
        with quiet_gwpy():  # gwpy restyles matplotlib on first import
            from gwpy.timeseries import TimeSeries, TimeSeriesDict

        out = TimeSeriesDict()
        arr = self.numpy()
        for i, (name, unit) in enumerate(zip(self.channels, self.units, strict=True)):
            out[name] = TimeSeries(
                arr[i],
                t0=self.t0,
                sample_rate=self.sample_rate,
                name=name,
                channel=name,
                unit=unit or None,
            )
        return out

    @classmethod
    def from_timeseriesdict(
        cls,
        tsd: Mapping,
        channels: Sequence[str] | None = None,
        *,
        sample_rate: float | None = None,
        dtype: torch.dtype | None = torch.float64,
    ) -> Block:
        """Stack a :class:`gwpy.timeseries.TimeSeriesDict` into one Block.

        Parameters
        ----------
        tsd : TimeSeriesDict (or mapping of name -> TimeSeries)
        channels : sequence of str, optional
            Order of the rows; default: the mapping's order.
        sample_rate : float, optional
            Target rate in Hz.  Required when the channels have different native rates: each
            channel whose rate differs is resampled explicitly (anti-aliased).  Without it,
            mixed rates raise :class:`SampleRateMismatchError` naming them.
        dtype : torch.dtype, optional
            Dtype of the stacked tensor (default float64; ``None`` keeps numpy's promotion).
        """
        channels = list(tsd) if channels is None else list(channels)
        if not channels:
            raise GwtwinError("cannot build a Block from no channels")
        missing = [c for c in channels if c not in tsd]
        if missing:
            raise GwtwinError(f"channels {missing} not found; available: {list(tsd)}")
        series = [tsd[c] for c in channels]
        rates = {c: float(s.sample_rate.value) for c, s in zip(channels, series, strict=True)}
        history: list[str] = []
        if sample_rate is None:
            if len(set(rates.values())) > 1:
                listing = ", ".join(f"{c} {r:g} Hz" for c, r in rates.items())
                raise SampleRateMismatchError(
                    f"channels have different native sample rates ({listing}); pass "
                    "sample_rate=... to resample them explicitly, or read them separately"
                )
            target = next(iter(rates.values()))
        else:
            target = _check_rate(sample_rate)
        arrays = []
        for c, s in zip(channels, series, strict=True):
            arr = np.asarray(s.value)
            if rates[c] != target:
                arr = resample(arr, rates[c], target)
                history.append(f"resample {c}: {rates[c]:g} Hz -> {target:g} Hz (polyphase)")
            elif sample_rate is not None and len(rates) == 1:
                warnings.warn(
                    f"resampling to the native rate {target:g} Hz does nothing",
                    stacklevel=2,
                )
            arrays.append(arr)
        t0s = {c: _exact_t0_ns(s) for c, s in zip(channels, series, strict=True)}
        if len(set(t0s.values())) > 1:
            listing = ", ".join(f"{c} {t / NS:.9f}" for c, t in t0s.items())
            raise GwtwinError(f"channels start at different GPS times ({listing})")
        sizes = {c: a.shape[-1] for c, a in zip(channels, arrays, strict=True)}
        if len(set(sizes.values())) > 1:
            listing = ", ".join(f"{c} {n}" for c, n in sizes.items())
            raise GwtwinError(
                f"channels have different durations (samples at {target:g} Hz: {listing})"
            )
        stacked = np.stack(arrays)
        data = torch.from_numpy(stacked)
        if dtype is not None:
            data = data.to(dtype)
        units = tuple(_unit_str(s) for s in series)
        return cls(data, next(iter(t0s.values())), target, tuple(channels), units, tuple(history))

    def __repr__(self) -> str:
        return (
            f"Block({len(self.channels)} channels x {self.size} samples, "
            f"t0={self.t0_ns / NS:.9f}, {self.sample_rate:g} Hz, {self.duration:g} s, "
            f"dtype={self.data.dtype})"
        )


def _unit_str(series) -> str:
    unit = getattr(series, "unit", None)
    if unit is None:
        return ""
    text = unit.to_string()
    return "" if text == "" else text


def _exact_t0_ns(series) -> int:
    """GPS start of a gwpy series in integer ns.

    gwpy keeps ``t0`` as a float64 (resolution ~0.1 us at GPS 1e9), so the fractional second is
    snapped to the series' own sample grid when it lies within 0.1 us of it: a frame starting at
    a whole second, or a whole number of samples after one, comes back exact.
    """
    t0 = series.t0
    value = float(t0.value if hasattr(t0, "value") else t0)
    rate = float(series.sample_rate.value)
    whole = math.floor(value)
    frac = value - whole
    samples = round(frac * rate)
    if abs(frac - samples / rate) < 1e-7:
        return whole * NS + int(round(Fraction(samples) / _rate_fraction(rate) * NS))
    return to_ns(Decimal(repr(value)))


def concat_in_time(blocks: list[Block]) -> Block:
    """Contiguous Blocks of the same channels joined in time (the first one's metadata)."""
    first = blocks[0]
    for prev, nxt in zip(blocks, blocks[1:], strict=False):
        if nxt.t0_ns != prev.end_ns:
            raise GwtwinError(
                f"internal: output pieces are not contiguous ({prev.span} then {nxt.span})"
            )
    data = torch.cat([b.data for b in blocks], dim=-1)
    return Block(data, first.t0_ns, first.sample_rate, first.channels, first.units)


def resample(x: np.ndarray, rate_in: float, rate_out: float, axis: int = -1) -> np.ndarray:
    """Anti-aliased polyphase resampling by the rational factor ``rate_out / rate_in``.

    Uses :func:`scipy.signal.resample_poly` (Kaiser-windowed FIR, zero phase), so it needs
    ``rate_out / rate_in`` to be a ratio of small integers (all detector rates are powers of two).
    """
    from scipy.signal import resample_poly

    ratio = Fraction(rate_out).limit_denominator(1_000_000) / Fraction(rate_in).limit_denominator(
        1_000_000
    )
    if ratio.numerator > 4096 or ratio.denominator > 4096:
        raise GwtwinError(
            f"cannot resample {rate_in:g} Hz -> {rate_out:g} Hz: the ratio {ratio} is not a "
            "ratio of small integers"
        )
    if ratio == 1:
        return np.array(x, copy=True)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=axis)
