"""Channel selection: which auxiliary channels witness the glitches in strain.

Both halves of the field's practice on the same triggers: hveto's hierarchical rounds with
Poisson significance (:mod:`.rounds`, :mod:`.significance`), guarded by time slides
(:mod:`.slides`) and an unsafe-channel list, and ANNALISA-style per-glitch coincidence scores
with a time tolerance (:mod:`.coincidence`).  Triggers come from :mod:`gwtwin.signal` (Q-tiles)
or, for displacement channels, from the predicted scattered-light fringe frequency
(:mod:`.fringe`); they are computed once per channel, cached and run in parallel
(:mod:`.triggers`).  :func:`select_channels` does it all and writes the outputs
(:mod:`.outputs`), including ``selected_channels.json`` for the dataset builder.
"""

from gwtwin.select.coincidence import CoincidenceScores, coincidence_scores
from gwtwin.select.config import SelectConfig, load_config
from gwtwin.select.fringe import fringe_frequency, fringe_triggers
from gwtwin.select.rounds import Round, RoundsResult, coincidence_grid, run_rounds
from gwtwin.select.scan import FORMAT, Selection, select_channels, select_from_triggers
from gwtwin.select.significance import expected_coincidences, significance
from gwtwin.select.slides import SlideResult, shift_triggers, time_slides

__all__ = [
    "FORMAT",
    "CoincidenceScores",
    "Round",
    "RoundsResult",
    "SelectConfig",
    "Selection",
    "SlideResult",
    "coincidence_grid",
    "coincidence_scores",
    "expected_coincidences",
    "fringe_frequency",
    "fringe_triggers",
    "load_config",
    "run_rounds",
    "select_channels",
    "select_from_triggers",
    "shift_triggers",
    "significance",
    "time_slides",
]
