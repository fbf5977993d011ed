"""Import gwpy without restyling the caller's matplotlib.

The first import of any gwpy module runs ``gwpy/__init__``, which imports ``gwpy.plot``, which
updates :data:`matplotlib.rcParams` with gwpy's style (12 pt fonts, grid on, grey axes, math-text
tick labels...).  gwtwin imports gwpy lazily, inside its readers and writers, so without care a
call such as ``gwtwin.data.read(path)`` restyles every later figure of the calling program.
Wrap each gwpy import in :func:`quiet_gwpy`::

    with quiet_gwpy():
        from gwpy.segments import SegmentList

gwpy's other import-time act, registering its ``Axes`` as matplotlib's default ``rectilinear``
projection, is left alone: gwpy's own plotting (``TimeSeries.plot``) depends on it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["keep_rcparams", "quiet_gwpy"]


def _raw(rc) -> dict:
    # dict.items: the stored values, without RcParams.__getitem__ resolving the backend (which
    # would import pyplot)
    return dict(dict.items(rc))


@contextmanager
def keep_rcparams() -> Iterator[None]:
    """Restore :data:`matplotlib.rcParams` on exit to what they were on entry.

    If matplotlib was not imported on entry and is on exit, the parameters it started with
    (``matplotlib.rcParamsOrig``, from the matplotlibrc files) are restored.  The backend is
    never touched: resolving it is not a change of style.
    """
    saved = _raw(sys.modules["matplotlib"].rcParams) if "matplotlib" in sys.modules else None
    try:
        yield
    finally:
        mpl = sys.modules.get("matplotlib")
        if mpl is not None:
            before = saved if saved is not None else _raw(mpl.rcParamsOrig)
            now = _raw(mpl.rcParams)
            changed = {
                k: v for k, v in before.items() if k != "backend" and k in now and now[k] != v
            }
            if changed:
                mpl.rcParams.update(changed)


@contextmanager
def quiet_gwpy() -> Iterator[None]:
    """Import gwpy modules inside this block without changing :data:`matplotlib.rcParams`.

    gwpy restyles matplotlib once, when ``gwpy.plot`` is first imported; after that this is a
    no-op.
    """
    if "gwpy.plot" in sys.modules:
        yield
        return
    with keep_rcparams():
        yield
