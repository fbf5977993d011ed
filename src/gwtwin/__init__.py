"""gwtwin: a digital twin of a gravitational-wave detector's noise, learnt from its witnesses."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gwtwin")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
