"""Set torch's thread count for one call and give the caller's back afterwards.

``torch.set_num_threads`` is process-wide: a library function that sets it (a config's
``torch_threads``, one thread per pool job) would change the thread count of the whole calling
program, a notebook's included, for good.  :func:`torch_threads` restores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the count found on entry.

    ``n`` None or 0 leaves the count as it is on entry (it is still restored on exit, so
    whatever the block sets is undone).  Also a decorator: ``@torch_threads()`` restores the
    count around every call of the decorated function, however it ends.  The count is one per
    process, so nested use is fine but concurrent use from several threads is not.
    """
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
