"""Compact-binary injections with LALSimulation.

A waveform is generated in the time domain (``SimInspiralChooseTDWaveform``, IMRPhenomD by
default), projected onto the detector with its antenna pattern and light-travel delay from the
geocentre (``SimDetectorStrainREAL8TimeSeries``), and added onto a zero series aligned with the
strain sample grid with LAL's sub-sample interpolation (``SimAddInjectionREAL8TimeSeries``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.simulate.noise import rng_for
from gwtwin.simulate.psd import peak_frequency, snr
from gwtwin.simulate.waveforms import draw

if TYPE_CHECKING:
    from gwtwin.simulate.events import Catalogue


def project_waveform(
    params: dict, prefix: str, start_gps: int, sample_rate: float
) -> tuple[int, np.ndarray]:
    """Detector strain of one binary on the strain grid.

    Parameters
    ----------
    params : dict
        ``mass1``, ``mass2`` (solar masses), ``spin1z``, ``spin2z``, ``distance_mpc``,
        ``inclination``, ``coa_phase``, ``ra``, ``dec``, ``psi`` (rad), ``geocent_end_time``
        (GPS s), ``approximant``, ``f_min`` (Hz).
    prefix : str
        Detector prefix (``V1``, ``H1``, ``L1``, ``K1``).
    start_gps : int
        GPS time of global sample 0 of the strain grid.
    sample_rate : float
        Hz.

    Returns
    -------
    index, h : int, ndarray
        Global sample index of ``h[0]`` and the strain samples.
    """
    import lal
    import lalsimulation as ls

    try:
        approximant = ls.GetApproximantFromString(params["approximant"])
    except RuntimeError:
        raise GwtwinError(f"unknown waveform approximant {params['approximant']!r}") from None
    try:
        detector = ls.DetectorPrefixToLALDetector(prefix)
    except RuntimeError:
        raise GwtwinError(f"no LAL detector for prefix {prefix!r}") from None
    dt = 1.0 / sample_rate
    hp, hc = ls.SimInspiralChooseTDWaveform(
        params["mass1"] * lal.MSUN_SI,
        params["mass2"] * lal.MSUN_SI,
        0.0,
        0.0,
        params["spin1z"],
        0.0,
        0.0,
        params["spin2z"],
        params["distance_mpc"] * 1e6 * lal.PC_SI,
        params["inclination"],
        params["coa_phase"],
        0.0,
        0.0,
        0.0,
        dt,
        params["f_min"],
        params["f_min"],
        None,
        approximant,
    )
    tc = lal.LIGOTimeGPS(params["geocent_end_time"])
    hp.epoch += tc
    hc.epoch += tc
    h = ls.SimDetectorStrainREAL8TimeSeries(
        hp, hc, params["ra"], params["dec"], params["psi"], detector
    )
    # zero target on the strain grid, one second of margin either side for the interpolation
    rel = float(h.epoch - lal.LIGOTimeGPS(start_gps))
    i0 = math.floor(rel * sample_rate) - int(sample_rate)
    n = h.data.length + 2 * int(sample_rate)
    target = lal.CreateREAL8TimeSeries(
        "inj", lal.LIGOTimeGPS(start_gps) + i0 * dt, 0.0, dt, lal.StrainUnit, n
    )
    target.data.data[:] = 0.0
    ls.SimAddInjectionREAL8TimeSeries(target, h, None)
    out = np.array(target.data.data)
    nz = np.nonzero(out)[0]
    if nz.size == 0:
        raise GwtwinError("the injected waveform is empty (check masses and f_min)")
    return i0 + int(nz[0]), out[nz[0] : nz[-1] + 1]


def draw_injections(cat: Catalogue) -> None:
    """Draw ``injections.count`` binaries, scale each to its drawn SNR and add them to ``cat``.

    The distance is rescaled from 100 Mpc to give the drawn SNR against the design PSD;
    coalescence times are uniform in the span (away from its edges), independent of the glitches.
    """
    cfg = cat.config
    inj = cfg.injections
    rate, psd, f_low = cat.rate, cat.psd, cat.f_low
    rng = rng_for(cfg.seed, "catalogue", "injection")
    span = (cfg.start + cfg.edge_margin + 2.0, cfg.start + cfg.duration - cfg.edge_margin)
    for _ in range(inj.count):
        m1, m2 = float(draw(inj.mass1, rng)), float(draw(inj.mass2, rng))
        m1, m2 = max(m1, m2), min(m1, m2)
        params = {
            "mass1": m1,
            "mass2": m2,
            "spin1z": float(rng.uniform(*inj.spin_z)),
            "spin2z": float(rng.uniform(*inj.spin_z)),
            "ra": float(rng.uniform(0, 2 * math.pi)),
            "dec": float(np.arcsin(rng.uniform(-1, 1))),
            "psi": float(rng.uniform(0, math.pi)),
            "inclination": float(np.arccos(rng.uniform(-1, 1))),
            "coa_phase": float(rng.uniform(0, 2 * math.pi)),
            "distance_mpc": 100.0,
            "approximant": inj.approximant,
            "f_min": inj.f_min,
        }
        target = float(draw(inj.snr, rng))
        tc = float(rng.uniform(*span))
        params["geocent_end_time"] = tc
        i0, h = project_waveform(params, cfg.prefix, cfg.start, rate)
        scale = target / snr(h, rate, psd, f_low)
        params["distance_mpc"] = 100.0 / scale
        h = h * scale
        cat.add_piece("injection", i0, h)
        t0 = cfg.start + i0 / rate
        peak = t0 + int(np.argmax(np.abs(h))) / rate
        cat.add(
            "injection",
            peak,
            t0,
            t0 + h.size / rate,
            snr=snr(h, rate, psd, f_low),
            frequency=peak_frequency(h, rate, psd, f_low),
            params=params,
        )
