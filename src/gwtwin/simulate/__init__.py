"""The simulated interferometer: strain, witnesses, couplings, glitches, injections and truth."""

from gwtwin.simulate.config import SimulationConfig, load_config
from gwtwin.simulate.engine import (
    ChannelSpec,
    SimulationResult,
    Simulator,
    catalogue_table,
    read_catalogue,
    truth_channel,
)
from gwtwin.simulate.events import FAMILIES, STRAIN_FAMILIES, Catalogue, Event
from gwtwin.simulate.psd import design_psd, snr


def simulate(config=None, output=None, **kwargs) -> SimulationResult:
    """Run a scenario (a :class:`SimulationConfig`, a YAML path or ``None`` for the defaults)."""
    if config is None or not isinstance(config, SimulationConfig):
        config = load_config(config)
    return Simulator(config).run(output, **kwargs)


__all__ = [
    "FAMILIES",
    "STRAIN_FAMILIES",
    "Catalogue",
    "ChannelSpec",
    "Event",
    "SimulationConfig",
    "SimulationResult",
    "Simulator",
    "catalogue_table",
    "design_psd",
    "load_config",
    "read_catalogue",
    "simulate",
    "snr",
    "truth_channel",
]
