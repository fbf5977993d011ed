"""hveto's hierarchical rounds with Poisson significance (Smith et al. 2011, ``hveto.core``).

Per round, for every auxiliary channel ``c``, SNR threshold ``rho`` and window ``dt``:
``n`` = strain triggers with a ``c`` trigger of ``snr >= rho`` within ``+- dt / 2`` (closed),
``mu = N_strain * N_c(>= rho) * dt / T_live``, ``S = -log10 P(Poisson(mu) >= n)``.  The channel
and (``rho``, ``dt``) of largest ``S`` win the round; ``+- dt / 2`` around every winner trigger
``>= rho`` is vetoed; vetoed strain and auxiliary triggers and the vetoed time are removed; repeat
until the best ``S`` falls below ``min_significance``.  Figures of merit per round follow hveto:
efficiency (vetoed / remaining strain triggers), deadtime (vetoed / remaining live time), their
cumulative values over the initial totals, and use percentage (winner triggers ``>= rho`` with a
strain trigger within ``+- dt / 2``, over winner triggers ``>= rho``).

Differences from hveto's code, all deliberate:

- coincidences are counted exactly with sorted arrays (hveto's ``find_all_coincidences`` stops
  its search at the neighbouring strain triggers, so an auxiliary trigger hidden behind a nearby
  strain trigger is missed; gwtwin counts it);
- ties inside a channel's grid go to the largest window, then the lowest threshold (hveto's
  iteration order); ties between channels go to the channel whose triggers above the threshold
  have the larger median SNR (the quieter sensor of the same disturbance), then by name;
- the significance far in the tail is exact (:mod:`gwtwin.select.significance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.select.significance import significance

__all__ = ["Round", "RoundsResult", "coincidence_grid", "run_rounds"]


@dataclass
class Round:
    """One round: the winner, its veto and the figures of merit (counts, s and fractions)."""

    n: int
    winner: str
    threshold: float
    window: float
    significance: float
    mu: float
    n_coincident: int
    n_strain: int  # strain triggers at the start of the round
    n_vetoed: int
    livetime: float  # s, live time at the start of the round
    deadtime: float  # s, vetoed live time
    cum_efficiency: float
    cum_deadtime: float
    n_winner_triggers: int
    n_winner_used: int
    vetoes: np.ndarray  # [n, 2] GPS s
    known: np.ndarray  # live segments at the start of the round
    vetoed_times: np.ndarray  # GPS s of the strain triggers vetoed
    significances: dict[str, float] = field(default_factory=dict)  # every channel, this round
    drop: dict[str, float] = field(default_factory=dict)  # S this round - S next round

    @property
    def efficiency(self) -> float:
        return self.n_vetoed / self.n_strain if self.n_strain else 0.0

    @property
    def deadtime_fraction(self) -> float:
        return self.deadtime / self.livetime if self.livetime > 0 else 0.0

    @property
    def use_percentage(self) -> float:
        return (
            100.0 * self.n_winner_used / self.n_winner_triggers if self.n_winner_triggers else 0.0
        )

    def summary(self) -> dict:
        """JSON-ready figures (no arrays but the veto segments)."""
        return {
            "round": self.n,
            "winner": self.winner,
            "threshold": self.threshold,
            "window": self.window,
            "significance": self.significance,
            "mu": self.mu,
            "n_coincident": self.n_coincident,
            "n_strain": self.n_strain,
            "n_vetoed": self.n_vetoed,
            "efficiency": self.efficiency,
            "livetime": self.livetime,
            "deadtime": self.deadtime,
            "deadtime_fraction": self.deadtime_fraction,
            "efficiency_over_deadtime": (
                self.efficiency / self.deadtime_fraction if self.deadtime_fraction > 0 else None
            ),
            "cum_efficiency": self.cum_efficiency,
            "cum_deadtime": self.cum_deadtime,
            "use_percentage": self.use_percentage,
            "n_winner_triggers": self.n_winner_triggers,
            "n_winner_used": self.n_winner_used,
            "significances": self.significances,
            "significance_drop": self.drop,
            "veto_segments": self.vetoes.tolist(),
        }


@dataclass
class RoundsResult:
    """All rounds, and every channel's best first-round (threshold, window, significance)."""

    rounds: list[Round]
    first: dict[str, tuple[float, float, float]]  # channel -> (S, threshold, window)
    final_significances: dict[str, float]  # the round that stopped
    livetime: float
    n_strain: int
    live: np.ndarray

    @property
    def winners(self) -> list[str]:
        return [r.winner for r in self.rounds]


def _nearest_distance(ts: np.ndarray, ta_sorted: np.ndarray) -> np.ndarray:
    """|t_s - nearest t_a| for every strain time (inf without auxiliary triggers)."""
    if ta_sorted.size == 0:
        return np.full(ts.shape, np.inf)
    i = np.searchsorted(ta_sorted, ts)
    left = np.where(i > 0, ts - ta_sorted[np.maximum(i - 1, 0)], np.inf)
    right = np.where(i < ta_sorted.size, ta_sorted[np.minimum(i, ta_sorted.size - 1)] - ts, np.inf)
    return np.minimum(left, right)


def coincidence_grid(strain_times, aux_times, aux_snr, thresholds, windows):
    """``n[threshold, window]``: strain triggers with a coincident auxiliary trigger.

    A strain trigger at ``t`` is coincident when an auxiliary trigger with ``snr >= threshold``
    lies in ``[t - window / 2, t + window / 2]``.  Also returns ``N_c[threshold]``.
    """
    ts = np.asarray(strain_times, dtype=np.float64)
    ta = np.asarray(aux_times, dtype=np.float64)
    snr = np.asarray(aux_snr, dtype=np.float64)
    half = np.asarray(windows, dtype=np.float64) / 2
    n = np.zeros((len(thresholds), len(windows)), dtype=np.int64)
    counts = np.zeros(len(thresholds), dtype=np.int64)
    for i, thr in enumerate(thresholds):
        sel = np.sort(ta[snr >= thr])
        counts[i] = sel.size
        if sel.size == 0 or ts.size == 0:
            continue
        d = _nearest_distance(ts, sel)
        n[i] = np.sum(d[:, None] <= half[None, :], axis=0)
    return n, counts


def _best(strain_times, table, thresholds, windows, livetime):
    """(S, threshold, window, n, mu) maximising S; ties: largest window, then lowest threshold."""
    n, counts = coincidence_grid(strain_times, table["time"], table["snr"], thresholds, windows)
    mu = len(strain_times) * counts[:, None] * np.asarray(windows)[None, :] / livetime
    s = significance(n, mu)
    # scan order as hveto's: windows descending, thresholds ascending; first maximum wins
    order = [(i, j) for j in reversed(range(len(windows))) for i in range(len(thresholds))]
    best = max(order, key=lambda ij: (s[ij], -order.index(ij)))
    i, j = best
    return float(s[i, j]), float(thresholds[i]), float(windows[j]), int(n[i, j]), float(mu[i, j])


def _median_snr(table, threshold) -> float:
    above = table["snr"][table["snr"] >= threshold]
    return float(np.median(above)) if above.size else 0.0


def run_rounds(
    strain,
    auxiliary: dict[str, np.ndarray],
    live,
    *,
    thresholds=(8.0, 10.0, 12.0, 15.0, 20.0, 50.0, 100.0, 300.0),
    windows=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
    min_significance: float = 5.0,
    max_rounds: int = 100,
) -> RoundsResult:
    """Run hveto's rounds on trigger tables (see the module docstring).

    Parameters
    ----------
    strain : structured array
        Strain triggers (``time``, ``snr``, ...), already cut at the strain SNR threshold.
    auxiliary : dict of structured arrays
        Auxiliary triggers per channel (``time``, ``snr``), cut at the lowest threshold or not.
    live : array [n, 2]
        Live (analysed) GPS segments; triggers outside them are ignored.
    thresholds, windows : sequence of float
        SNR thresholds and full coincidence windows (s).
    min_significance : float
        Stop when the best significance is below this.
    """
    thresholds = sorted(float(x) for x in thresholds)
    windows = sorted(float(x) for x in windows)
    live = sg.coalesce(live)
    strain = np.sort(np.asarray(strain)[sg.contains(live, strain["time"])], order="time")
    aux = {c: np.sort(t[sg.contains(live, t["time"])], order="time") for c, t in auxiliary.items()}
    livetime0, n0 = sg.total(live), len(strain)
    rounds: list[Round] = []
    first: dict[str, tuple[float, float, float]] = {}
    cum_vetoed, cum_dead = 0, 0.0
    previous: dict[str, float] | None = None
    final: dict[str, float] = {}
    for number in range(1, max_rounds + 1):
        livetime = sg.total(live)
        if livetime <= 0 or len(strain) == 0 or not aux:
            final = {c: 0.0 for c in aux}
            break
        results = {
            c: _best(strain["time"], t, thresholds, windows, livetime) for c, t in aux.items()
        }
        sigs = {c: r[0] for c, r in results.items()}
        if number == 1:
            first = {c: (r[0], r[1], r[2]) for c, r in results.items()}
        if previous is not None:
            rounds[-1].drop = {c: previous[c] - sigs.get(c, 0.0) for c in previous}
        previous = sigs
        winner = max(
            results,
            key=lambda c: (
                round(results[c][0], 9),
                _median_snr(aux[c], results[c][1]),
                [-ord(ch) for ch in c],
            ),
        )
        s, thr, win, n_coinc, mu = results[winner]
        if s < min_significance:
            final = sigs
            break
        wtab = aux[winner][aux[winner]["snr"] >= thr]
        vetoes = sg.windows_around(wtab["time"], win)
        used = int(np.sum(_nearest_distance(wtab["time"], strain["time"]) <= win / 2))
        hit = sg.contains(vetoes, strain["time"])
        dead = sg.total(sg.intersect(vetoes, live))
        cum_vetoed += int(hit.sum())
        cum_dead += dead
        rounds.append(
            Round(
                n=number,
                winner=winner,
                threshold=thr,
                window=win,
                significance=s,
                mu=mu,
                n_coincident=n_coinc,
                n_strain=len(strain),
                n_vetoed=int(hit.sum()),
                livetime=livetime,
                deadtime=dead,
                cum_efficiency=cum_vetoed / n0,
                cum_deadtime=cum_dead / livetime0,
                n_winner_triggers=len(wtab),
                n_winner_used=used,
                vetoes=vetoes,
                known=live.copy(),
                vetoed_times=strain["time"][hit].copy(),
                significances=sigs,
            )
        )
        strain = strain[~hit]
        aux = {c: t[~sg.contains(vetoes, t["time"])] for c, t in aux.items()}
        live = sg.subtract(live, vetoes)
    if rounds and not rounds[-1].drop:
        rounds[-1].drop = {c: rounds[-1].significances[c] - final.get(c, 0.0) for c in aux}
    return RoundsResult(rounds, first, final, livetime0, n0, live)
