import importlib.util

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


@pytest.fixture
def load_saved(tmp_path):
    """``load_saved(f)``: ``f.save`` to a file, imported in this process; its public function."""

    def load(f, name="saved_module"):
        path = tmp_path / f"{name}.py"
        f.save(path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, module.__all__[0])

    return load
