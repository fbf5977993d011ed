"""The ranked channel table and round summary printed by ``gwtwin scan`` (rich)."""

from __future__ import annotations

__all__ = ["print_selection"]


def _fmt(value, spec: str = ".1f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def print_selection(selection, console=None, max_rows: int = 40) -> None:
    """Print the rounds and the ranked channel table of a :class:`~gwtwin.select.Selection`."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rounds = Table(
        title=f"hveto rounds vs {selection.strain_channel}: {selection.rounds.n_strain} glitches "
        f"(SNR >= {selection.config.strain_snr:g}) in {selection.livetime:.0f} s"
    )
    for col in (
        "round",
        "winner",
        "SNR >=",
        "window s",
        "S",
        "eff %",
        "dead %",
        "cum eff %",
        "cum dead %",
        "use %",
    ):
        rounds.add_column(col)
    for r in selection.rounds.rounds:
        rounds.add_row(
            str(r.n),
            r.winner,
            f"{r.threshold:g}",
            f"{r.window:g}",
            f"{r.significance:.1f}",
            f"{100 * r.efficiency:.1f}",
            f"{100 * r.deadtime_fraction:.2f}",
            f"{100 * r.cum_efficiency:.1f}",
            f"{100 * r.cum_deadtime:.2f}",
            f"{r.use_percentage:.0f}",
        )
    console.print(rounds, width=max(console.width, 150))
    table = Table(title="channels, ranked")
    for col in (
        "#",
        "channel",
        "status",
        "S",
        "slide bg",
        "coinc %",
        "chance %",
        "IoU",
        "delay ms",
    ):
        table.add_column(col)
    for row in selection.rows[:max_rows]:
        delay = row.get("median_delay")
        table.add_row(
            str(row["rank"]),
            row["channel"],
            row["status"],
            _fmt(row["significance"]),
            _fmt(row["slide_background"]),
            _fmt(100 * row["coincidence_fraction"]),
            _fmt(100 * row["chance_fraction"]),
            _fmt(row["iou"], ".2f"),
            _fmt(None if delay is None else 1e3 * delay),
        )
    console.print(table, width=max(console.width, 150))
    if selection.slides is not None:
        s = selection.slides
        console.print(
            f"time slides: {len(s.shifts)} x {s.n_channels} channels, {s.false_selections} false "
            f"selections (rate {100 * s.false_selection_rate:.2f} %)"
        )
    for note in selection.notes:
        console.print(f"note: {note}", markup=False)
    names = ", ".join(selection.selected_names) or "none"
    console.print(f"selected: {names}", markup=False)
