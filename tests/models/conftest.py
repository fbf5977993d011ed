"""Model tests run torch on one thread: on the shared 2-core machine OpenMP's second thread
mostly waits for a core, which slows small convolutions down tenfold."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
