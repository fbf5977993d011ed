"""Flag figures of merit against truth: efficiency and deadtime of the clean step's flags, counted
as hveto counts a veto."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.data.channels import FLAG_GROUP
from gwtwin.data.segments import efficiency_deadtime
from gwtwin.evaluate.metrics import WITNESSED_FAMILIES


def flag_figures(clean: Path, table, config, read_flags, spans) -> dict:
    """Efficiency/deadtime of the clean step's flags, as hveto measures a veto.

    The population is the raw-strain triggers (``clean/triggers/raw.h5``) with SNR >=
    ``flag_snr`` inside the flag's known time (within the evaluated ``spans``) whose peak falls
    inside a truth glitch of the flag's target families (``pad`` seconds around its span);
    efficiency = the share of them inside the flag's active segments, deadtime = the active
    share of the known time.  Also
    reported (``catalogue_*``): the share of truth glitches with catalogue SNR >= ``flag_snr``
    whose catalogue peak lies inside the flag.  That figure counts glitches no trigger
    generator sees: a catalogue SNR is computed with the simulator's noise PSD, without the
    strain's lines, so a power-line episode at the 50 Hz line can hold catalogue SNR 30 and no
    trigger at all, and a 9 s scattered-light arch train peaks at a time its Q-tiles need not
    cover.
    """
    path = clean / "flags" / "gwtwin-veto.h5"
    if not path.is_file():
        return {}
    from gwtwin.signal.triggers import read_triggers

    flags = read_flags(path)
    family = np.asarray(table["family"]).astype(str)
    snr = np.asarray(table["snr"], np.float64)
    peak = np.asarray(table["gps_peak"], np.float64)
    lo = np.asarray(table["gps_start"], np.float64) - config.pad
    hi = np.asarray(table["gps_end"], np.float64) + config.pad
    trig_path = clean / "triggers" / "raw.h5"
    trig_time = np.zeros(0)
    if trig_path.is_file():
        trig = read_triggers(trig_path)
        rows = np.concatenate([trig[c] for c in trig.channels]) if trig.channels else None
        if rows is not None and rows.size:
            trig_time = rows["time"][rows["snr"] >= config.flag_snr]
    targets = {
        "WITNESSED": np.isin(family, WITNESSED_FAMILIES),
        "UNWITNESSED": family == "blip",
        "CLEANING_FAILED": np.isin(family, WITNESSED_FAMILIES),
    }
    out = {}
    for name, target in targets.items():
        flag = flag_by_name(flags, name)
        if flag is None:
            continue
        known = sg.intersect_spans([(float(a), float(b)) for a, b in flag.known], spans)
        known = np.asarray(known, np.float64).reshape(-1, 2)
        active = sg.intersect_spans([(float(a), float(b)) for a, b in flag.active], known.tolist())
        active = np.asarray(active, np.float64).reshape(-1, 2)
        if not len(known):
            continue

        def _in(times, spans):
            inside = np.zeros(times.size, bool)
            for a, b in spans:
                inside |= (times >= a) & (times < b)
            return inside

        in_target = np.zeros(trig_time.size, bool)
        for a, b in zip(lo[target], hi[target], strict=True):
            in_target |= (trig_time >= a) & (trig_time < b)
        population = trig_time[in_target & _in(trig_time, known)]
        figures = efficiency_deadtime(active, known, population)
        cat = target & _in(peak, known) & (snr >= config.flag_snr)
        cat_figures = efficiency_deadtime(active, known, peak[cat])
        out[flag.name] = {
            **figures,
            "catalogue_efficiency": cat_figures["efficiency"],
            "catalogue_n_glitches": cat_figures["n_glitches"],
            "catalogue_n_vetoed": cat_figures["n_vetoed"],
            "population": _population(name),
        }
    return out


def flag_by_name(flags: dict, name: str):
    """The flag ``<IFO>:GWTWIN-<name>:<version>`` of a mapping keyed by full flag names."""
    return next(
        (f for key, f in flags.items() if key.split(":")[1] == f"{FLAG_GROUP}-{name}"), None
    )


def _population(name: str) -> str:
    return {
        "WITNESSED": "raw-strain triggers in witnessed glitches (scatter, em, powerline)",
        "UNWITNESSED": "raw-strain triggers in blips (no witness)",
        "CLEANING_FAILED": "raw-strain triggers in witnessed glitches",
    }[name]
