"""Frames that gwtwin's simulator did not write: a plain numpy + gwpy script.

A stand-in for someone else's data, to show (and test) that ``gwtwin run`` needs nothing but the
frame directory and the strain channel's name. Everything differs from the built-in simulator:

- the detector is ``K1`` (files ``K-K1_TOY-<gps>-16.gwf``, 16 s each);
- strain ``K1:CAL-TOY_STRAIN_C00`` at 2048 Hz, Gaussian noise coloured by a simple low-pass;
- a magnetometer ``K1:PEM-MAG_BS_X_OUT_DQ`` at **256 Hz**, in counts (**no unit**), with bursts
  (sine-Gaussians 25-90 Hz) that couple *linearly* into strain (gain, 6 ms delay);
- a decoy seismometer ``K1:PEM-SEIS_EXV_Z_OUT_DQ`` at 512 Hz with bursts of its own that do not
  couple;
- an **unwitnessed glitch family** in strain only: "whistles", chirps sweeping 150 -> 400 Hz in
  0.3 s, which no witness sees.

No truth is written: gwtwin can select, train and clean without it, and ``gwtwin evaluate`` says
what it cannot compute. Usage::

    python examples/write_foreign_frames.py OUTPUT_DIR [--duration 384] [--seed 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from gwpy.timeseries import TimeSeries, TimeSeriesDict
from scipy import signal

START = 1_300_000_000  # GPS
FILE_DURATION = 16  # s
STRAIN, STRAIN_RATE = "K1:CAL-TOY_STRAIN_C00", 2048
MAG, MAG_RATE = "K1:PEM-MAG_BS_X_OUT_DQ", 256
SEIS, SEIS_RATE = "K1:PEM-SEIS_EXV_Z_OUT_DQ", 512
COUPLING_GAIN = 0.6  # strain units per magnetometer count
COUPLING_DELAY = 0.006  # s, the magnetic coupling's delay
STRAIN_NOISE = 1.0  # strain units, rms of the white noise before colouring


def sine_gaussian(t, t0, f0, q, amplitude):
    tau = q / (np.sqrt(2) * np.pi * f0)
    return amplitude * np.exp(-(((t - t0) / tau) ** 2)) * np.sin(2 * np.pi * f0 * (t - t0))


def event_times(rng, duration, count, guard, taken=()):
    """``count`` times in ``[guard, duration - guard)`` at least ``guard`` s from each other."""
    times = list(taken)
    out = []
    while len(out) < count:
        t = rng.uniform(guard, duration - guard)
        if all(abs(t - u) > guard for u in times):
            times.append(t)
            out.append(t)
    return np.sort(out)


def render(duration: float, seed: int) -> dict[str, np.ndarray]:
    """The three channels over ``duration`` s, and the event times (for a test's reference)."""
    rng = np.random.default_rng(seed)
    n_strain, n_mag = int(duration * STRAIN_RATE), int(duration * MAG_RATE)
    t_mag = np.arange(n_mag) / MAG_RATE
    t_strain = np.arange(n_strain) / STRAIN_RATE
    t_seis = np.arange(int(duration * SEIS_RATE)) / SEIS_RATE
    magnetic = event_times(rng, duration, int(duration / 12), guard=5.0)
    whistles = event_times(rng, duration, int(duration / 40), guard=5.0, taken=magnetic)
    seismic = event_times(rng, duration, int(duration / 15), guard=2.0)
    # the magnetometer: sensor noise + bursts, in counts
    mag = 0.02 * rng.standard_normal(n_mag)
    for t0 in magnetic:
        mag += sine_gaussian(t_mag, t0, rng.uniform(25, 90), rng.uniform(6, 12), rng.uniform(3, 6))
    # the magnetic field couples linearly: the witness resampled to the strain rate, delayed
    coupled = signal.resample_poly(mag, STRAIN_RATE // MAG_RATE, 1)[:n_strain]
    shift = int(round(COUPLING_DELAY * STRAIN_RATE))
    coupled = COUPLING_GAIN * np.concatenate([np.zeros(shift), coupled[:-shift]])
    # strain: coloured Gaussian noise + the coupled field + the unwitnessed whistles
    sos = signal.butter(2, 600, "low", fs=STRAIN_RATE, output="sos")
    strain = signal.sosfilt(sos, STRAIN_NOISE * rng.standard_normal(n_strain)) + coupled
    for t0 in whistles:
        env = np.exp(-(((t_strain - t0) / 0.1) ** 2))
        phase = 2 * np.pi * (150 * (t_strain - t0) + 0.5 * (250 / 0.3) * (t_strain - t0) ** 2)
        strain += 2.5 * env * np.sin(phase)
    seis = 0.05 * rng.standard_normal(t_seis.size)
    for t0 in seismic:
        seis += sine_gaussian(t_seis, t0, rng.uniform(10, 60), 8, rng.uniform(1, 2))
    return {
        STRAIN: strain,
        MAG: mag.astype(np.float32),
        SEIS: seis.astype(np.float32),
        "magnetic": magnetic,
        "whistles": whistles,
        "seismic": seismic,
    }


def write(output: Path, duration: float = 384.0, seed: int = 3) -> dict[str, np.ndarray]:
    """Write ``duration`` s of frames into ``output`` (GWF, 16 s files); returns :func:`render`."""
    data = render(duration, seed)
    output.mkdir(parents=True, exist_ok=True)
    rates = {STRAIN: STRAIN_RATE, MAG: MAG_RATE, SEIS: SEIS_RATE}
    for k in range(int(duration // FILE_DURATION)):
        tsd = TimeSeriesDict()
        for name, rate in rates.items():
            a, b = k * FILE_DURATION * rate, (k + 1) * FILE_DURATION * rate
            tsd[name] = TimeSeries(
                data[name][a:b], t0=START + k * FILE_DURATION, sample_rate=rate, channel=name
            )
        gps = START + k * FILE_DURATION
        tsd.write(str(output / f"K-K1_TOY-{gps}-{FILE_DURATION}.gwf"), format="gwf")
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="directory to fill with GWF frames")
    parser.add_argument("--duration", type=float, default=384.0, help="s (multiple of 16)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    data = write(args.output, args.duration, args.seed)
    print(
        f"wrote {int(args.duration // FILE_DURATION)} frames of {FILE_DURATION} s into "
        f"{args.output}: {len(data['magnetic'])} magnetic glitches, {len(data['whistles'])} "
        f"whistles, {len(data['seismic'])} seismometer bursts"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
