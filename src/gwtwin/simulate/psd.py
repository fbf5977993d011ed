"""Design sensitivity curves of the simulated detector and the SNR of a waveform against them.

Curves (one-sided power spectral density, strain^2/Hz), taken from LALSimulation's tabulated
design curves:

- ``advirgo``: Advanced Virgo design sensitivity, ``XLALSimNoisePSDAdVDesignSensitivityP1200087``
  — the AdV design curve of LIGO-P1200087 (Abbott et al., "Prospects for observing and localizing
  gravitational-wave transients with Advanced LIGO, Advanced Virgo and KAGRA", Living Rev.
  Relativ. 21, 3 (2018), arXiv:1304.0670), file ``AdV_DESIGN_SENSITIVITY_P1200087.txt``.
- ``aligo``: Advanced LIGO design sensitivity, ``XLALSimNoisePSDaLIGODesignSensitivityT1800044``
  — LIGO-T1800044 (aLIGO design curve, 2018 update), file ``aLIGO_DESIGN_SENSITIVITY_T1800044.txt``.

Real detectors have a seismic wall that rises by many orders of magnitude below ~10 Hz.  The
simulated noise holds the ASD constant below ``floor_frequency`` (8 Hz by default): no analysis
in gwtwin looks below 10 Hz, and the plateau keeps the simulated series numerically tame
(dynamic range ~1e3 instead of ~1e8).  :func:`design_psd` returns the curve with that plateau;
SNR integrals start at ``f_low`` (10 Hz by default) where the plateau plays no part.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gwtwin.errors import GwtwinError

CURVES = {
    "advirgo": "SimNoisePSDAdVDesignSensitivityP1200087",
    "aligo": "SimNoisePSDaLIGODesignSensitivityT1800044",
}
_DF = 0.0625  # Hz, resolution at which the LAL curve is tabulated and then interpolated
_FMAX = 8192.0


@lru_cache(maxsize=8)
def _table(curve: str) -> tuple[np.ndarray, np.ndarray]:
    if curve not in CURVES:
        raise GwtwinError(f"unknown design curve {curve!r}; choose one of {sorted(CURVES)}")
    import lal
    import lalsimulation

    n = int(_FMAX / _DF) + 1
    series = lal.CreateREAL8FrequencySeries(curve, 0, 0.0, _DF, lal.DimensionlessUnit, n)
    getattr(lalsimulation, CURVES[curve])(series, 1.0)
    psd = np.array(series.data.data, dtype=float)
    freqs = np.arange(n) * _DF
    valid = psd > 0
    return freqs[valid], psd[valid]


def design_psd(freqs, curve: str = "advirgo", floor_frequency: float = 8.0) -> np.ndarray:
    """One-sided design PSD (strain^2/Hz) at ``freqs`` (Hz), flat below ``floor_frequency``.

    Interpolation is linear in log-log between the 1/16 Hz tabulated points.
    """
    f_tab, p_tab = _table(curve)
    freqs = np.asarray(freqs, dtype=float)
    f = np.clip(freqs, max(floor_frequency, f_tab[0]), f_tab[-1])
    return np.exp(np.interp(np.log(f), np.log(f_tab), np.log(p_tab)))


def snr(
    waveform: np.ndarray,
    sample_rate: float,
    psd,
    f_low: float = 10.0,
    f_high: float | None = None,
) -> float:
    """Optimal (matched-filter) SNR of a waveform against a one-sided PSD.

    ``SNR^2 = 4 * sum_{f_low <= f <= f_high} |h~(f)|^2 / S(f) * df`` with ``h~ = rfft(h) / fs``.
    The waveform must be zero (or negligible) at both ends of the array: it is not windowed,
    and it is zero-padded to a power of two (a finer frequency grid; the integral is unchanged).

    Parameters
    ----------
    waveform : array
        Samples of the signal alone (no noise), strain.
    sample_rate : float
        Hz.
    psd : callable or array
        ``psd(freqs)`` in strain^2/Hz, or an array on the rfft frequency grid.
    f_low, f_high : float
        Integration band in Hz (``f_high`` defaults to Nyquist).
    """
    h = np.asarray(waveform, dtype=float)
    if h.size == 0:
        return 0.0
    n = fft_size(h.size)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    hf = np.fft.rfft(h, n=n) / sample_rate
    s = psd(freqs) if callable(psd) else np.asarray(psd)
    band = freqs >= f_low
    if f_high is not None:
        band &= freqs <= f_high
    df = sample_rate / n
    return float(np.sqrt(4.0 * np.sum(np.abs(hf[band]) ** 2 / s[band]) * df))


def peak_frequency(waveform: np.ndarray, sample_rate: float, psd, f_low: float) -> float:
    """Frequency (Hz) where the SNR density ``|h~(f)|^2 / S(f)`` of a waveform peaks, above
    ``f_low`` (the catalogue's ``frequency`` column)."""
    n = fft_size(waveform.size)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    density = np.abs(np.fft.rfft(waveform, n=n)) ** 2 / psd(freqs)
    density[freqs < f_low] = 0.0
    return float(freqs[int(np.argmax(density))])


class CachedPSD:
    """The design PSD as a callable, memoised per rfft grid (SNRs reuse a few grid lengths).

    Parameters
    ----------
    curve : str
        A design curve of :data:`CURVES`.
    floor_frequency : float
        Hz; the PSD is held flat below it (see :func:`design_psd`).
    """

    def __init__(self, curve: str, floor_frequency: float):
        self.curve, self.floor = curve, floor_frequency
        self._cache: dict[tuple[int, float], np.ndarray] = {}

    def __call__(self, freqs) -> np.ndarray:
        freqs = np.asarray(freqs, dtype=float)
        if freqs.ndim != 1 or freqs.size < 2 or freqs[0] != 0:
            return design_psd(freqs, self.curve, self.floor)
        key = (freqs.size, float(freqs[1]))
        if key not in self._cache:
            self._cache[key] = design_psd(freqs, self.curve, self.floor)
        return self._cache[key]


def fft_size(size: int) -> int:
    """The power of two at or above ``size`` (fast FFTs, and few distinct PSD grids to cache)."""
    return 1 << max(0, int(size - 1).bit_length())


def white_psd(asd: float):
    """A flat one-sided PSD ``asd**2`` as a callable (sensor noise of witness channels)."""
    return lambda f: np.full(np.shape(f), float(asd) ** 2)


def powerlaw_psd(asd_at_1hz: float, slope: float, f_corner: float = 1.0):
    """ASD ``asd_at_1hz * (f / 1 Hz)**-slope`` above ``f_corner``, flat below, as a PSD callable."""

    def psd(f):
        f = np.maximum(np.asarray(f, dtype=float), f_corner)
        return (asd_at_1hz * f ** (-slope)) ** 2

    return psd
