"""Cleaning and veto metrics against ground truth (arrays in, numbers out).

Everything is measured in whitened strain: with a whitening filter built from the reference PSD,
Gaussian noise has unit variance per sample, so the squared norm of a whitened waveform is its
optimal (matched-filter) SNR squared, and the squared norm of what cleaning leaves of a glitch is
the residual's SNR squared. With

- ``raw`` the strain, ``cleaned`` the cleaned strain, so the subtracted prediction is
  ``raw - cleaned``,
- ``coupled`` the truth of the witnessed couplings (noise-free, in strain),

the part of the glitch left after cleaning is ``coupled - (raw - cleaned)``, and per glitch
(window = the catalogue's ``[gps_start, gps_end]`` widened by ``pad``)

- ``snr = |w(coupled)|``, ``residual_snr = |w(coupled - (raw - cleaned))|``,
- ``fraction_removed = 1 - residual_snr**2 / snr**2`` (the fraction of excess power removed; it
  is negative when cleaning adds power).

Signal safety uses the injection truth ``h``: ``snr_loss = <w(raw - cleaned - coupled), w(h)> /
|w(h)|**2``, the fraction of the injection's SNR the cleaning took away beyond the witnessed
glitches (noise-free, so exact; without ``coupled``, everything subtracted counts).
The ASD ratio compares cleaned and raw on the *same* Welch segments (Hann, 50 % overlap), taken
only where no strain glitch or injection is (the "no added noise" test) and over the whole span.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.signal.whitening import Whitener

WITNESSED_FAMILIES = ("scatter", "em", "powerline")


def _windows(t0: float, rate: float, n: int, starts, ends, pad: float, edge: int):
    """Sample index ranges of ``[start - pad, end + pad]`` clipped to the trusted interior."""
    lo = np.floor((np.asarray(starts) - pad - t0) * rate).astype(np.int64)
    hi = np.ceil((np.asarray(ends) + pad - t0) * rate).astype(np.int64)
    return np.clip(lo, edge, n - edge), np.clip(hi, edge, n - edge)


def score_glitches(
    raw,
    cleaned,
    coupled,
    t0: float,
    whitener: Whitener,
    events,
    *,
    pad: float = 0.25,
):
    """Per-glitch SNR before/after and fraction of excess power removed.

    Parameters
    ----------
    raw, cleaned, coupled : array, shape ``[time]``
        Strain, cleaned strain and the truth of the witnessed couplings (same grid, strain units).
    t0 : float
        GPS of the first sample, s.
    whitener : Whitener
        The reference whitening (its PSD is the raw strain's).
    events : table-like
        Rows with ``id``, ``family``, ``gps_peak``, ``gps_start``, ``gps_end``, ``snr``.
    pad : float
        Seconds added to each side of every event window.

    Returns
    -------
    dict of numpy arrays, one entry per event inside the trusted span: ``id``, ``family``,
    ``gps_peak``, ``snr_catalogue``, ``snr``, ``residual_snr``, ``fraction_removed``.
    """
    raw, cleaned, coupled = (np.asarray(a, dtype=np.float64) for a in (raw, cleaned, coupled))
    if not raw.shape == cleaned.shape == coupled.shape or raw.ndim != 1:
        raise GwtwinError(
            "raw, cleaned and coupled must be 1-D arrays of one length, found shapes "
            f"{raw.shape}, {cleaned.shape}, {coupled.shape}"
        )
    rate = whitener.sample_rate
    w_coupled = whitener(coupled)
    w_left = w_coupled - whitener(raw - cleaned)  # whitening is linear
    edge = whitener.edge_size
    lo, hi = _windows(t0, rate, raw.size, events["gps_start"], events["gps_end"], pad, edge)
    keep = hi > lo
    snr = np.array([np.sqrt(np.sum(w_coupled[a:b] ** 2)) for a, b in zip(lo, hi, strict=True)])
    left = np.array([np.sqrt(np.sum(w_left[a:b] ** 2)) for a, b in zip(lo, hi, strict=True)])
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(snr > 0, 1.0 - left**2 / snr**2, np.nan)
    return {
        "id": np.asarray(events["id"])[keep],
        "family": np.asarray(events["family"]).astype(str)[keep],
        "gps_peak": np.asarray(events["gps_peak"], dtype=np.float64)[keep],
        "snr_catalogue": np.asarray(events["snr"], dtype=np.float64)[keep],
        "snr": snr[keep],
        "residual_snr": left[keep],
        "fraction_removed": fraction[keep],
    }


def summarise_scores(scores: dict, *, snr_max: float = 50.0, residual_limit: float = 5.0) -> dict:
    """Per family and overall: count, median fraction removed, share with residual SNR < limit.

    The residual criterion counts only glitches with ``snr <= snr_max`` (the acceptance's
    population); the median covers every scored glitch.
    """
    out = {}
    families = sorted(set(scores["family"].tolist()))
    for name in [*families, "all"]:
        sel = np.ones(len(scores["family"]), bool) if name == "all" else scores["family"] == name
        capped = sel & (scores["snr"] <= snr_max)
        out[name] = {
            "count": int(sel.sum()),
            "median_fraction_removed": float(np.nanmedian(scores["fraction_removed"][sel]))
            if sel.any()
            else None,
            "residual_below_limit": float(np.mean(scores["residual_snr"][capped] < residual_limit))
            if capped.any()
            else None,
            "median_residual_snr": float(np.median(scores["residual_snr"][sel]))
            if sel.any()
            else None,
        }
    out["criteria"] = {"snr_max": snr_max, "residual_limit": residual_limit}
    return out


def injection_safety(raw, cleaned, injection, t0: float, whitener: Whitener, events, coupled=None):
    """Per injection: optimal SNR, matched SNR before/after cleaning, and the SNR loss.

    ``snr_before`` and ``snr_after`` are the matched-filter SNRs (template = the injection) in
    raw and cleaned strain: a glitch overlapping the signal moves them when it is cleaned.
    ``snr_loss`` is the share of the signal's SNR that the cleaning itself took: the projection
    onto the template of what was subtracted, less the truth of the witnessed couplings when
    ``coupled`` is given (removing a glitch that overlaps a signal takes nothing of the signal;
    an oracle cleaning scores exactly 0).
    """
    raw, cleaned, injection = (np.asarray(a, dtype=np.float64) for a in (raw, cleaned, injection))
    w_h = whitener(injection)
    w_raw, w_pred = whitener(raw), whitener(raw - cleaned)
    w_err = w_pred if coupled is None else w_pred - whitener(np.asarray(coupled, np.float64))
    lo, hi = _windows(
        t0,
        whitener.sample_rate,
        raw.size,
        events["gps_start"],
        events["gps_end"],
        0.0,
        whitener.edge_size,
    )
    rows = {
        "id": [],
        "gps_peak": [],
        "snr_optimal": [],
        "snr_before": [],
        "snr_after": [],
        "snr_loss": [],
    }
    for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if b <= a:
            continue
        norm2 = float(np.sum(w_h[a:b] ** 2))
        if norm2 <= 0:
            continue
        before = float(np.dot(w_raw[a:b], w_h[a:b])) / np.sqrt(norm2)
        after = before - float(np.dot(w_pred[a:b], w_h[a:b])) / np.sqrt(norm2)
        rows["id"].append(int(events["id"][k]))
        rows["gps_peak"].append(float(events["gps_peak"][k]))
        rows["snr_optimal"].append(np.sqrt(norm2))
        rows["snr_before"].append(before)
        rows["snr_after"].append(after)
        rows["snr_loss"].append(float(np.dot(w_err[a:b], w_h[a:b])) / norm2)
    return {k: np.asarray(v) for k, v in rows.items()}


def quiet_segments(span: Sequence[float], events, pad: float) -> np.ndarray:
    """``[n, 2]`` GPS stretches of ``span`` at least ``pad`` away from every event."""
    starts = np.asarray(events["gps_start"], dtype=np.float64) - pad
    ends = np.asarray(events["gps_end"], dtype=np.float64) + pad
    order = np.argsort(starts)
    out, cursor = [], float(span[0])
    for s, e in zip(starts[order], ends[order], strict=True):
        if s > cursor:
            out.append((cursor, min(s, float(span[1]))))
        cursor = max(cursor, e)
    if cursor < span[1]:
        out.append((cursor, float(span[1])))
    arr = np.asarray(out, dtype=np.float64).reshape(-1, 2)
    return arr[arr[:, 1] > arr[:, 0]]


def welch_powers(
    raw,
    cleaned,
    t0: float,
    sample_rate: float,
    *,
    fftlength: float = 4.0,
    segments: np.ndarray | None = None,
):
    """Summed Welch powers of cleaned and raw over the same segments (Hann, 50 % overlap).

    ``segments`` (GPS ``[n, 2]``) restricts the Welch segments to those lying wholly inside;
    default the whole span. Returns ``(frequencies, sum P_cleaned, sum P_raw, n_segments)``, so
    pieces of a long span can be added before taking the ratio (zeros when nothing fits).
    """
    raw, cleaned = np.asarray(raw, np.float64), np.asarray(cleaned, np.float64)
    size = int(round(fftlength * sample_rate))
    step = size // 2
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    if segments is None:
        segments = np.array([[t0, t0 + raw.size / sample_rate]])
    starts = []
    for a, b in np.asarray(segments, dtype=np.float64).reshape(-1, 2):
        i0 = int(np.ceil((a - t0) * sample_rate))
        i1 = int(np.floor((b - t0) * sample_rate))
        i0, i1 = max(i0, 0), min(i1, raw.size)
        starts.extend(range(i0, i1 - size + 1, step))
    if not starts:
        return freqs, np.zeros(freqs.size), np.zeros(freqs.size), 0
    window = np.hanning(size + 1)[:-1]

    def power(x):
        total = np.zeros(freqs.size)
        for k in range(0, len(starts), 256):  # bounded memory
            idx = np.asarray(starts[k : k + 256])[:, None] + np.arange(size)[None, :]
            seg = x[idx]
            seg = seg - seg.mean(axis=1, keepdims=True)
            total += np.sum(np.abs(np.fft.rfft(seg * window, axis=1)) ** 2, axis=0)
        return total

    return freqs, power(cleaned), power(raw), len(starts)


def asd_ratio(
    raw,
    cleaned,
    t0: float,
    sample_rate: float,
    *,
    fftlength: float = 4.0,
    segments: np.ndarray | None = None,
):
    """``sqrt(mean P_cleaned / mean P_raw)`` per frequency over the same Welch segments.

    ``segments`` (GPS ``[n, 2]``) restricts the Welch segments to those lying wholly inside;
    default the whole span. Returns ``(frequencies, ratio, n_segments)``.
    """
    freqs, p_clean, p_raw, n = welch_powers(
        raw, cleaned, t0, sample_rate, fftlength=fftlength, segments=segments
    )
    if n == 0:
        segments = (
            np.array([[t0, t0 + np.asarray(raw).size / sample_rate]])
            if segments is None
            else np.asarray(segments, np.float64).reshape(-1, 2)
        )
        raise GwtwinError(
            f"no {fftlength} s Welch segment fits in the given stretches "
            f"(longest {np.max(np.diff(segments, axis=1), initial=0):.2f} s)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt(p_clean / p_raw)
    return freqs, ratio, n
