import numpy as np
import pytest

import symgraph as sg


@pytest.fixture(autouse=True)
def fresh_graph():
    """Each test builds its nodes in a new intern table."""
    with sg.fresh_graph() as graph:
        yield graph


@pytest.fixture
def rng():
    return np.random.default_rng(0)
