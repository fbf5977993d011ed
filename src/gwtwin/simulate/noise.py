"""Seeded, streaming coloured Gaussian noise.

White Gaussian samples are drawn per frame from a generator keyed by ``(seed, stream, frame)``,
and coloured by a fixed FIR filter whose response is ``ASD(f) * sqrt(fs / 2)`` (so the output's
one-sided PSD is ASD^2).  A frame is computed from its own white samples and the tail of the
previous frames' white samples, so

- frames can be rendered independently and in parallel, in any order;
- the series is continuous across frame boundaries and identical however it is chunked;
- the same seed gives the same samples.

The FIR is designed by frequency sampling on a grid of ``1 / filter_duration`` Hz with a Hann
taper on the impulse response (so its response is the target ASD smoothed over ~2 grid bins).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import oaconvolve

_FRAME_OFFSET = 1 << 32  # frame indices may be negative (history before the first frame)


def stream_key(name: str) -> int:
    """A stable integer for a stream name (a channel name, "catalogue"...)."""
    return zlib.crc32(name.encode())


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator for ``seed`` and any number of integer/string keys (stable across runs)."""
    entropy = [int(seed)] + [stream_key(k) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def design_fir(psd, sample_rate: float, filter_duration: float) -> np.ndarray:
    """Linear-phase FIR whose amplitude response is ``sqrt(psd(f) * fs / 2)``.

    Parameters
    ----------
    psd : callable
        One-sided PSD (unit^2/Hz) as a function of frequency (Hz).
    sample_rate : float
        Hz.
    filter_duration : float
        Length of the impulse response in seconds (frequency resolution ``1/filter_duration``).
    """
    size = int(round(filter_duration * sample_rate))
    size += size % 2  # even length, centre at size // 2
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    response = np.sqrt(psd(freqs) * sample_rate / 2.0)
    impulse = np.fft.irfft(response, n=size)
    impulse = np.roll(impulse, size // 2) * np.hanning(size + 1)[:size]
    return impulse


@dataclass
class ColouredNoise:
    """Gaussian noise with a given PSD, rendered frame by frame.

    Parameters
    ----------
    seed : int
        Scenario seed.
    stream : str
        Name of this noise stream (the channel name), so each channel has its own samples and
        adding a channel never changes another.
    sample_rate : float
        Hz.
    frame_size : int
        Samples per frame.
    psd : callable or None
        One-sided PSD; ``None`` means white noise with unit variance per sample scaled by
        ``white_asd`` (no filtering).
    filter_duration : float
        FIR length in seconds (ignored for white noise).
    white_asd : float
        ASD of white noise (unit/sqrt(Hz)); used when ``psd`` is None.
    """

    seed: int
    stream: str
    sample_rate: float
    frame_size: int
    psd: object = None
    filter_duration: float = 4.0
    white_asd: float = 1.0
    _fir: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.psd is not None:
            self._fir = design_fir(self.psd, self.sample_rate, self.filter_duration)

    def _white(self, frame: int) -> np.ndarray:
        rng = rng_for(self.seed, "noise", self.stream, frame + _FRAME_OFFSET)
        return rng.standard_normal(self.frame_size)

    def frame(self, index: int) -> np.ndarray:
        """Samples of frame ``index`` (frame 0 starts at the scenario start)."""
        if self._fir is None:
            # white: one-sided PSD asd^2 <=> per-sample std asd * sqrt(fs / 2)
            return self._white(index) * (self.white_asd * np.sqrt(self.sample_rate / 2.0))
        taps = self._fir.size
        history = -(-(taps - 1) // self.frame_size)  # frames of white noise before this one
        white = np.concatenate([self._white(index - k) for k in range(history, -1, -1)])
        white = white[white.size - self.frame_size - (taps - 1) :]
        return oaconvolve(white, self._fir, mode="valid")
