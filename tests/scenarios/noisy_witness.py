"""A detector that gwtwin's simulator did not write: noisy witnesses, one linear coupling.

Written with numpy, scipy and gwpy only (no gwtwin code), so it tests gwtwin on data whose
conventions it did not choose:

- LIGO-style names at a made-up site ``X1``; every witness in raw counts with **no unit**;
- strain ``X1:GDS-CALIB_STRAIN`` (4096 Hz): Gaussian noise coloured by a smooth seismic-wall /
  thermal / shot-noise ASD, plus the coupled magnetic glitches, plus a few strain-only blips;
- ``X1:PEM-CS_MAG_LVEA_VERTEX_X_DQ`` (2048 Hz): the magnetic field's sine-Gaussian bursts
  (30-220 Hz) on top of a **white sensor-noise floor that does not couple** into strain;
- the coupling: one fixed linear transfer function (4th-order Butterworth band-pass 25-250 Hz)
  and a 7 ms delay, applied to the true field only, so the witness's noise floor is noise the
  model must not subtract;
- ``X1:PEM-EY_ACC_BSC_X_DQ`` (1024 Hz) and ``X1:PEM-CS_MIC_LVEA_DQ`` (2048 Hz): decoys with
  their own noise and glitches and no coupling; ``X1:ASC-DHARD_P_OUT_DQ`` (256 Hz): a slowly
  wandering decoy.

:func:`write_scenario` writes 64 s GWF frames and returns the truth: the noise-free coupled
signal in strain, the burst times with their strain SNR (against the noise ASD).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

IFO = "X1"
STRAIN = f"{IFO}:GDS-CALIB_STRAIN"
MAGNETOMETER = f"{IFO}:PEM-CS_MAG_LVEA_VERTEX_X_DQ"
DECOYS = (f"{IFO}:PEM-EY_ACC_BSC_X_DQ", f"{IFO}:PEM-CS_MIC_LVEA_DQ", f"{IFO}:ASC-DHARD_P_OUT_DQ")
STRAIN_RATE, MAG_RATE = 4096, 2048
DELAY = 0.007  # s, witness -> strain
BAND = (25.0, 250.0)  # Hz, the coupling's band-pass


def strain_asd(f: np.ndarray) -> np.ndarray:
    """A smooth detector-like ASD (1/sqrt(Hz)): a seismic wall, a thermal bucket, shot noise."""
    f = np.maximum(np.asarray(f, float), 1.0)
    return 4e-24 * np.sqrt((15.0 / f) ** 10 + (60.0 / f) ** 2 + 1.0 + (f / 400.0) ** 2)


def _coloured(rng, n: int, rate: float, asd) -> np.ndarray:
    """Gaussian noise with one-sided ASD ``asd(f)`` (FFT colouring of white noise)."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    spec *= asd(f) * np.sqrt(rate / 2.0)
    return np.fft.irfft(spec, n)


def _sine_gaussian(t, t0, f0, q, amplitude) -> np.ndarray:
    tau = q / (np.sqrt(2.0) * np.pi * f0)
    return amplitude * np.exp(-(((t - t0) / tau) ** 2)) * np.sin(2 * np.pi * f0 * (t - t0))


def _whitened_norm(x: np.ndarray, rate: float) -> float:
    """Optimal SNR of a noise-free signal against :func:`strain_asd` (1 s FFT length pad)."""
    n = x.size
    spec = np.fft.rfft(x) / rate
    f = np.fft.rfftfreq(n, 1.0 / rate)
    keep = f >= 10.0
    return float(np.sqrt(4 * np.sum(np.abs(spec[keep]) ** 2 / strain_asd(f[keep]) ** 2) / n * rate))


def write_scenario(
    directory,
    *,
    duration: int = 1024,
    start: int = 1_300_000_000,
    seed: int = 7,
    burst_interval: float = 6.0,
    floor: float = 1.0,
    coupling: float = 1.8e-23,
    amplitude_range: tuple[float, float] = (6.0, 400.0),
    blips: int = 8,
) -> dict:
    """Write the scenario's frames under ``directory/frames`` and return its truth.

    Parameters
    ----------
    duration : int
        Seconds (a multiple of 64).
    burst_interval : float
        Mean seconds between magnetic bursts (placed on a jittered grid, never overlapping).
    floor : float
        The magnetometer's white sensor-noise standard deviation (counts per sample).
    coupling : float
        Strain per count of true field through the band-pass.
    amplitude_range : (float, float)
        Peak burst amplitudes in counts, drawn log-uniformly.

    Returns
    -------
    dict
        ``coupled`` (noise-free coupled strain, 4096 Hz), ``bursts`` (structured array: time,
        frequency, q, amplitude, witness_snr, strain_snr), ``blips`` (times), ``start``,
        ``duration`` and the channel names.
    """
    from gwpy.timeseries import TimeSeries, TimeSeriesDict

    if duration % 64:
        raise ValueError(f"duration must be a multiple of 64 s, found {duration}")
    rng = np.random.default_rng(seed)
    t_s = np.arange(duration * STRAIN_RATE) / STRAIN_RATE
    # the true field at the strain rate, bursts on a jittered grid (inside 2 s of the ends)
    centres = np.arange(burst_interval, duration - 2.0, burst_interval)
    centres = centres + rng.uniform(-0.3, 0.3, centres.size) * burst_interval
    centres = centres[(centres > 2.0) & (centres < duration - 2.0)]
    n_b = centres.size
    freq = rng.uniform(30.0, 220.0, n_b)
    q = rng.uniform(4.0, 10.0, n_b)
    amp = np.exp(rng.uniform(*np.log(amplitude_range), n_b))
    field = np.zeros_like(t_s)
    for c, f0, qq, a in zip(centres, freq, q, amp, strict=True):
        lo, hi = int((c - 0.5) * STRAIN_RATE), int((c + 0.5) * STRAIN_RATE)
        field[lo:hi] += _sine_gaussian(t_s[lo:hi], c, f0, qq, a)
    # coupling: band-pass then delay (a fixed linear transfer function), true field only
    sos = signal.butter(4, BAND, btype="bandpass", fs=STRAIN_RATE, output="sos")
    shift = int(round(DELAY * STRAIN_RATE))
    coupled = np.zeros_like(field)
    coupled[shift:] = coupling * signal.sosfilt(sos, field)[:-shift]
    # witness = field (decimated to its rate) + a white floor that does not couple
    step = STRAIN_RATE // MAG_RATE
    witness = signal.decimate(field, step, ftype="fir", zero_phase=True)
    witness = witness + floor * rng.standard_normal(witness.size)
    # strain: coloured noise + coupled glitches + strain-only blips
    strain = _coloured(rng, t_s.size, STRAIN_RATE, strain_asd) + coupled
    blip_times = np.sort(rng.uniform(5.0, duration - 5.0, blips))
    for tb in blip_times:
        lo, hi = int((tb - 0.1) * STRAIN_RATE), int((tb + 0.1) * STRAIN_RATE)
        blip = _sine_gaussian(t_s[lo:hi], tb, rng.uniform(80, 300), 3.0, 1.0)
        blip *= rng.uniform(15, 40) / _whitened_norm(blip, STRAIN_RATE)
        strain[lo:hi] += blip
    snr = np.empty(n_b)
    wsnr = np.empty(n_b)
    for k, c in enumerate(centres):
        lo, hi = int((c - 0.5) * STRAIN_RATE), int((c + 0.5) * STRAIN_RATE)
        snr[k] = _whitened_norm(coupled[lo:hi], STRAIN_RATE)
        piece = field[lo:hi:step]
        wsnr[k] = float(np.sqrt(np.sum(piece**2))) / floor
    # decoys: their own noise and glitches, no coupling
    decoys = {}
    acc_t = np.arange(duration * 1024) / 1024
    acc = 0.5 * rng.standard_normal(acc_t.size)
    for c in rng.uniform(2, duration - 2, duration // 6):
        sl = slice(int((c - 0.5) * 1024), int((c + 0.5) * 1024))
        acc[sl] += _sine_gaussian(acc_t[sl], c, rng.uniform(20, 200), 6.0, rng.uniform(3, 30))
    decoys[DECOYS[0]] = (acc, 1024)
    mic_t = np.arange(duration * 2048) / 2048
    mic = signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(mic_t.size))
    for c in rng.uniform(2, duration - 2, duration // 8):
        sl = slice(int((c - 0.5) * 2048), int((c + 0.5) * 2048))
        mic[sl] += _sine_gaussian(mic_t[sl], c, rng.uniform(50, 500), 8.0, rng.uniform(5, 60))
    decoys[DECOYS[1]] = (mic, 2048)
    slow_t = np.arange(duration * 256) / 256
    slow = np.cumsum(rng.standard_normal(slow_t.size)) * 0.01 + 0.2 * rng.standard_normal(
        slow_t.size
    )
    decoys[DECOYS[2]] = (slow, 256)
    # frames: 64 s GWF files, LIGO file names, no units on the witnesses
    out = Path(directory) / "frames"
    out.mkdir(parents=True, exist_ok=True)
    series = {STRAIN: (strain, STRAIN_RATE), MAGNETOMETER: (witness, MAG_RATE), **decoys}
    for t0 in range(0, duration, 64):
        frame = TimeSeriesDict()
        for name, (data, rate) in series.items():
            piece = data[t0 * rate : (t0 + 64) * rate]
            dtype = np.float64 if name == STRAIN else np.float32
            frame[name] = TimeSeries(
                piece.astype(dtype), t0=start + t0, sample_rate=rate, name=name, channel=name
            )
        frame.write(str(out / f"X-X1_TEST-{start + t0}-64.gwf"), format="gwf")
    bursts = np.zeros(
        n_b,
        dtype=[
            ("time", float),
            ("frequency", float),
            ("q", float),
            ("amplitude", float),
            ("witness_snr", float),
            ("strain_snr", float),
        ],
    )
    bursts["time"], bursts["frequency"], bursts["q"] = start + centres, freq, q
    bursts["amplitude"], bursts["witness_snr"], bursts["strain_snr"] = amp, wsnr, snr
    return {
        "coupled": coupled,
        "strain": strain,
        "bursts": bursts,
        "blips": start + blip_times,
        "start": start,
        "duration": duration,
        "rate": STRAIN_RATE,
        "strain_channel": STRAIN,
        "witness": MAGNETOMETER,
    }


def _whiten(x: np.ndarray, rate: float) -> np.ndarray:
    """Whiten with the scenario's own ASD (exact PSD), unit variance per sample, high-passed
    at 10 Hz."""
    n = x.size
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    # a smooth high-pass (8-12 Hz): a brick wall at 10 Hz would ring for seconds
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((f - 8.0) / 4.0, 0.0, 1.0))
    w = rise / (strain_asd(f) * np.sqrt(rate / 2.0))
    return np.fft.irfft(spec * w, n)


def score(truth: dict, raw: np.ndarray, cleaned: np.ndarray, start: float, end: float) -> dict:
    """Truth metrics of a cleaning over GPS ``[start, end)`` (arrays at the strain rate from the
    scenario's start): per visible coupled glitch (strain SNR >= 8) the whitened excess power
    removed ``1 - |w(c - (raw - cleaned))|^2 / |w(c)|^2`` over +-0.5 s, and the cleaned / raw
    ASD ratio (Welch 2 s, Hann) per bin of 10-1000 Hz over the glitch-free stretches (1.5 s
    from any burst or blip), plus each glitch's whitened power change ``|w(cleaned)|^2 -
    |w(raw)|^2`` against the margin ``3 x 2 |w(raw - cleaned)|``."""
    rate = truth["rate"]
    t0 = truth["start"]
    i0, i1 = int((start - t0) * rate), int((end - t0) * rate)
    # whitened over 16 s more each side where the arrays have them (the FFT wraps around)
    p0, p1 = max(i0 - 16 * rate, 0), min(i1 + 16 * rate, raw.size)

    def white(x):
        return _whiten(x[p0:p1], rate)[i0 - p0 : i1 - p0]

    w_c = white(truth["coupled"])
    w_raw = white(raw)
    w_cl = white(cleaned)
    w_d = w_raw - w_cl
    removed, change, margin = [], [], []
    bursts = truth["bursts"]
    inside = (bursts["time"] >= start + 2) & (bursts["time"] < end - 2)
    for b in bursts[inside & (bursts["strain_snr"] >= 8)]:
        lo = int((b["time"] - 0.5 - start) * rate)
        hi = int((b["time"] + 0.5 - start) * rate)
        c, d = w_c[lo:hi], w_d[lo:hi]
        removed.append(1 - np.sum((c - d) ** 2) / np.sum(c**2))
        change.append(float(np.sum(w_cl[lo:hi] ** 2) - np.sum(w_raw[lo:hi] ** 2)))
        margin.append(3 * 2 * float(np.sqrt(np.sum(d**2))))
    # glitch-free stretches: 1.5 s from every burst (whatever its SNR) and blip
    events = np.concatenate([bursts["time"], truth["blips"]])
    quiet = np.ones(i1 - i0, bool)
    for t in events:
        lo, hi = int((t - 1.5 - start) * rate), int((t + 1.5 - start) * rate)
        quiet[max(lo, 0) : max(hi, 0)] = False
    edges = np.flatnonzero(np.diff(np.r_[0, quiet.astype(int), 0]))
    nseg = int(2 * rate)
    p_raw = p_cl = 0.0
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < nseg:
            continue
        f, pr = signal.welch(raw[i0 + a : i0 + b], rate, nperseg=nseg)
        _, pc = signal.welch(cleaned[i0 + a : i0 + b], rate, nperseg=nseg)
        k = (b - a - nseg // 2) // (nseg // 2)  # segments: weights of the pieces
        p_raw = p_raw + k * pr
        p_cl = p_cl + k * pc
    band = (f >= 10) & (f <= 1000)
    ratio = np.sqrt(p_cl[band] / p_raw[band])
    removed = np.asarray(removed)
    return {
        "visible_glitches": int(removed.size),
        "median_removed": float(np.median(removed)) if removed.size else None,
        "removed": removed,
        "quiet_seconds": float(quiet.sum() / rate),
        "asd_ratio_quiet": [float(ratio.min()), float(ratio.max())],
        "worst_change_over_margin": float(np.max(np.asarray(change) - np.asarray(margin)))
        if change
        else None,
    }
