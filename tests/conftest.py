import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def digits():
    import dualmap as dm

    return dm.load_dataset("digits")


def read_only(array):
    """A read-only copy: any attempt of the code under test to modify its input fails."""
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array
