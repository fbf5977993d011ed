"""Witnesses of continuous couplings: significant coherence with strain (Virgo's "bruco" idea).

Trigger coincidence finds channels that glitch when strain glitches; a channel that couples
continuously (a mains monitor whose line is in strain at all times) may never glitch on its own.
Such a channel shows up as magnitude-squared coherence with strain. For Welch estimates from ``N``
independent segments of two *independent* Gaussian series, ``P(C > c) = (1 - c)**(N - 1)``; with
``M`` frequency bins tested, a bin is significant at false-alarm probability ``alpha`` per channel
when ``C > 1 - (alpha / M)**(1 / (N - 1))``. ``N`` is the equivalent number of independent
segments of the Hann, 50 %-overlap Welch average: ``K / (1 + 2 r**2)`` for ``K`` segments, with
``r = 0.167`` the correlation of neighbouring Hann segments at 50 % overlap (Welch 1967).

Both series are compared at the lower of their rates (strain is resampled, polyphase), over the
band ``frange`` clipped to 0.9 x the common Nyquist frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwtwin.errors import GwtwinError


@dataclass(frozen=True)
class CoherenceResult:
    channel: str
    max_coherence: float
    frequency: float  # Hz, bin of the maximum
    threshold: float
    bands: list[tuple[float, float]]  # contiguous significant bins, Hz
    n_segments: int

    @property
    def significant(self) -> bool:
        return bool(self.bands)


def coherence_threshold(n_segments: int, n_bins: int, alpha: float) -> float:
    """Coherence above which a bin is significant (see the module docstring)."""
    if n_segments < 2:
        raise GwtwinError(f"coherence needs at least 2 independent segments, found {n_segments}")
    return 1.0 - (alpha / max(n_bins, 1)) ** (1.0 / (n_segments - 1))


def _bands(freqs: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    out, start = [], None
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 0.0
    for f, on in zip(freqs, mask, strict=True):
        if on and start is None:
            start = f
        if not on and start is not None:
            out.append((float(start), float(f - df)))
            start = None
    if start is not None:
        out.append((float(start), float(freqs[-1])))
    return out


def coherence_with_strain(
    channel: str,
    witness: np.ndarray,
    witness_rate: float,
    strain: np.ndarray,
    strain_rate: float,
    *,
    fftlength: float = 4.0,
    frange: tuple[float, float] = (10.0, 1000.0),
    alpha: float = 1e-4,
) -> CoherenceResult:
    """Coherence of one witness with strain over the same span, and its significant bands."""
    from scipy.signal import coherence, resample_poly

    rate = min(witness_rate, strain_rate)
    x = np.asarray(strain, dtype=np.float64)
    y = np.asarray(witness, dtype=np.float64)
    if strain_rate != rate:
        ratio = strain_rate / rate
        if abs(ratio - round(ratio)) > 1e-9:
            raise GwtwinError(
                f"strain rate {strain_rate} Hz is not a multiple of {channel}'s {witness_rate} Hz"
            )
        x = resample_poly(x, 1, int(round(ratio)))
    if witness_rate != rate:
        ratio = witness_rate / rate
        y = resample_poly(y, 1, int(round(ratio)))
    n = min(x.size, y.size)
    nperseg = int(round(fftlength * rate))
    k_segments = max((n - nperseg) // (nperseg // 2) + 1, 0)
    n_segments = int(k_segments / (1 + 2 * 0.167**2))
    freqs, coh = coherence(x[:n], y[:n], fs=rate, nperseg=nperseg, noverlap=nperseg // 2)
    hi = min(frange[1], 0.9 * rate / 2)
    band = (freqs >= frange[0]) & (freqs <= hi)
    if not band.any():
        return CoherenceResult(channel, 0.0, float("nan"), 1.0, [], n_segments)
    threshold = coherence_threshold(n_segments, int(band.sum()), alpha)
    f, c = freqs[band], coh[band]
    k = int(np.argmax(c))
    return CoherenceResult(
        channel, float(c[k]), float(f[k]), float(threshold), _bands(f, c > threshold), n_segments
    )
