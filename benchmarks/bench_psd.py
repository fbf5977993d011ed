"""gwtwin.signal against its references on the same data, in one run: Welch PSD (median and
mean) vs scipy.signal.welch, whitening vs gwpy TimeSeries.whiten, band-pass vs
scipy.signal.sosfiltfilt, resampling vs scipy.signal.resample_poly.

Prints the wall-clock time of each and ``ratio scipy/gwtwin`` (> 1: gwtwin is faster).  The
reference always runs on the CPU with numpy; gwtwin runs on ``--device`` (cpu or cuda).

    .venv/bin/python benchmarks/bench_psd.py [--channels 16] [--duration 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.signal
import torch

from gwtwin.signal import bandpass, design_sos, resample, welch, whiten


def _timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        if isinstance(out, torch.Tensor) and out.is_cuda:
            torch.cuda.synchronize()
        elif isinstance(out, tuple) and out and isinstance(out[-1], torch.Tensor):
            if out[-1].is_cuda:
                torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _row(name: str, t_ref: float, t_ours: float, check: str) -> None:
    print(
        f"{name:<34} reference {t_ref:8.3f} s   gwtwin {t_ours:8.3f} s   "
        f"ratio scipy/gwtwin {t_ref / t_ours:6.2f}   {check}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--duration", type=int, default=128, help="seconds")
    parser.add_argument("--rate", type=int, default=4096, help="Hz")
    parser.add_argument("--fftlength", type=float, default=4.0, help="seconds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--torch-iir",
        action="store_true",
        help="also time the torch IIR backend on the CPU (slow there; the CPU default is scipy's)",
    )
    args = parser.parse_args()
    rate, fftlength = args.rate, args.fftlength
    device = torch.device(args.device)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.channels, args.duration * rate))
    # a red-ish spectrum so whitening does something: integrate white noise once, high-pass 5 Hz
    x = scipy.signal.sosfilt(scipy.signal.butter(2, 5, "highpass", fs=rate, output="sos"), x)
    x = np.cumsum(x, axis=-1) / rate + 1e-3 * x
    xt = torch.from_numpy(x).to(device)
    print(
        f"{args.channels} channels x {args.duration} s at {rate} Hz, float64, "
        f"fftlength={fftlength:g} s, gwtwin on {device} (torch threads: {torch.get_num_threads()})"
    )
    # warm up (first FFT plans, CUDA context)
    welch(xt[:1, : 8 * rate], rate, 1.0)
    bandpass(xt[:1, : 8 * rate], rate, 20, 500)
    if device.type == "cuda":
        torch.cuda.synchronize()

    nperseg = int(fftlength * rate)
    for average in ("median", "mean"):
        t_ref, (_, p_ref) = _timed(
            lambda average=average: scipy.signal.welch(x, rate, nperseg=nperseg, average=average),
            args.repeat,
        )
        t_ours, (_, p) = _timed(
            lambda average=average: welch(xt, rate, fftlength, average=average), args.repeat
        )
        err = np.abs(p.cpu().numpy() / p_ref - 1).max()
        _row(f"welch {average} vs scipy.signal.welch", t_ref, t_ours, f"max rel diff {err:.1e}")

    freqs, psd = welch(xt, rate, fftlength)

    def gwpy_whiten():
        from gwpy.frequencyseries import FrequencySeries
        from gwpy.timeseries import TimeSeries

        out = []
        f = freqs.cpu().numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row, values in zip(x, psd.cpu().numpy(), strict=True):
                asd = FrequencySeries(np.sqrt(values), f0=0, df=f[1] - f[0])
                ts = TimeSeries(row, sample_rate=rate)
                out.append(ts.whiten(fftlength, fftlength / 2, asd=asd, fduration=2).value)
        return np.stack(out)

    t_ours, w = _timed(lambda: whiten(xt, (freqs, psd), rate, 2.0), args.repeat)
    try:
        t_ref, w_ref = _timed(gwpy_whiten, args.repeat)
    except ImportError as exc:  # e.g. a GPU machine without gwpy
        print(f"whiten: gwtwin {t_ours:.3f} s; gwpy not importable ({exc}), no reference")
    else:
        err = np.abs(w.cpu().numpy() - w_ref).max()
        _row("whiten vs gwpy TimeSeries.whiten", t_ref, t_ours, f"max abs diff {err:.1e}")

    sos = design_sos(rate, 20, 500, 8)
    t_ref, b_ref = _timed(lambda: scipy.signal.sosfiltfilt(sos, x, axis=-1), args.repeat)
    for backend in ("scipy", "torch"):
        if (device.type == "cuda" and backend == "scipy") or (
            device.type == "cpu" and backend == "torch" and not args.torch_iir
        ):
            continue
        t_ours, b = _timed(lambda backend=backend: bandpass(xt, rate, 20, 500, backend=backend), 1)
        err = np.abs(b.cpu().numpy() - b_ref).max() / np.abs(b_ref).max()
        _row(f"bandpass [{backend}] vs sosfiltfilt", t_ref, t_ours, f"max rel diff {err:.1e}")

    t_ref, r_ref = _timed(lambda: scipy.signal.resample_poly(x, 1, 4, axis=-1), args.repeat)
    t_ours, r = _timed(lambda: resample(xt, rate, rate // 4), args.repeat)
    err = np.abs(r.cpu().numpy() - r_ref).max() / np.abs(r_ref).max()
    _row(f"resample {rate}->{rate // 4} vs resample_poly", t_ref, t_ours, f"max rel diff {err:.1e}")


if __name__ == "__main__":
    main()
