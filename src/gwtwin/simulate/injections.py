"""Compact-binary injections with LALSimulation.

A waveform is generated in the time domain (``SimInspiralChooseTDWaveform``, IMRPhenomD by
default), projected onto the detector with its antenna pattern and light-travel delay from the
geocentre (``SimDetectorStrainREAL8TimeSeries``), and added onto a zero series aligned with the
strain sample grid with LAL's sub-sample interpolation (``SimAddInjectionREAL8TimeSeries``).
"""

from __future__ import annotations

import math

import numpy as np

from gwtwin.errors import GwtwinError


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
