"""Side by side with hveto: its own round functions (``hveto.core``) on gwtwin's triggers.

:func:`hveto_rounds` replays the round loop of hveto's command line (``hveto/__main__.py``:
``core.find_max_significance``, ``core.veto``, ``core.veto_all``, ``HvetoWinner.get_segments``,
``core.find_coincidences``) on the same strain and auxiliary tables gwtwin's
:func:`~gwtwin.select.rounds.run_rounds` gets, so winners, efficiency and deadtime can be
compared.  hveto is a test/benchmark dependency only (``pip install hveto``); nothing else in
gwtwin imports it.
"""

from __future__ import annotations

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.data._quiet import quiet_gwpy
from gwtwin.errors import GwtwinError

__all__ = ["hveto_rounds"]


def _table(rows: np.ndarray, channel: str):
    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.table import EventTable

    out = EventTable(
        {
            "time": np.asarray(rows["time"], dtype=np.float64),
            "frequency": np.asarray(rows["frequency"], dtype=np.float64),
            "snr": np.asarray(rows["snr"], dtype=np.float64),
        }
    )
    out["channel"] = np.array([channel] * len(out), dtype=object).astype(str) if len(out) else []
    return out


def hveto_rounds(
    strain,
    auxiliary: dict,
    live,
    *,
    strain_channel: str,
    thresholds=(8, 10, 12, 15, 20, 50, 100, 300),
    windows=(0.1, 0.2, 0.5, 1, 2, 5),
    min_significance: float = 5.0,
    max_rounds: int = 100,
) -> list[dict]:
    """hveto's rounds on the given triggers: one dict per round (winner, snr, window, ...).

    Inputs as for :func:`gwtwin.select.rounds.run_rounds`; triggers outside ``live`` are dropped
    first, as hveto reads only triggers inside its analysis segments.
    """
    try:
        with quiet_gwpy():  # hveto.core imports gwpy, which restyles matplotlib on first import
            from gwpy.segments import Segment, SegmentList
            from hveto import core
    except ImportError as exc:  # pragma: no cover - hveto is a test dependency
        raise GwtwinError("hveto_rounds needs the hveto package (pip install hveto)") from exc

    live = sg.coalesce(live)
    segments = SegmentList(Segment(float(a), float(b)) for a, b in live)
    primary = _table(strain[sg.contains(live, strain["time"])], strain_channel)
    aux = {
        c: _table(t[sg.contains(live, t["time"])], c)
        for c, t in auxiliary.items()
        if np.any(sg.contains(live, t["time"]))
    }
    livetime0, n0 = float(abs(segments)), len(primary)
    out: list[dict] = []
    cum_vetoed, cum_dead = 0, 0.0
    for n in range(1, max_rounds + 1):
        rnd = core.HvetoRound(n, strain_channel, segments=segments)
        if not len(primary) or not aux:
            break
        winner, _sigs = core.find_max_significance(
            primary, aux, strain_channel, list(thresholds), list(windows), rnd.livetime
        )
        if winner.significance < min_significance:
            break
        allaux = aux[winner.name][aux[winner.name]["snr"] >= winner.snr]
        coincs = allaux[core.find_coincidences(allaux["time"], primary["time"], dt=winner.window)]
        rnd.vetoes = winner.get_segments(allaux["time"])
        primary, vetoed = core.veto(primary, rnd.vetoes)
        dead = rnd.deadtime[0]
        cum_vetoed += len(vetoed)
        cum_dead += dead
        out.append(
            {
                "round": n,
                "winner": winner.name,
                "threshold": float(winner.snr),
                "window": float(winner.window),
                "significance": float(winner.significance),
                "n_vetoed": len(vetoed),
                "n_strain": len(primary) + len(vetoed),
                "deadtime": dead,
                "livetime": rnd.livetime,
                "use_percentage": 100.0 * len(coincs) / len(allaux) if len(allaux) else 0.0,
                "cum_efficiency": cum_vetoed / n0,
                "cum_deadtime": cum_dead / livetime0,
            }
        )
        aux = core.veto_all(aux, rnd.vetoes)
        aux = {c: t for c, t in aux.items() if len(t)}
        segments = segments - rnd.vetoes
    return out
