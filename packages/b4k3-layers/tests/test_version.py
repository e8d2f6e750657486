from importlib.metadata import version

import b4k3_layers


def test_version_matches_the_distribution_metadata():
    assert b4k3_layers.__version__ == version("b4k3-layers")
