from importlib.metadata import version

import b4k3_generate


def test_version_matches_the_distribution_metadata():
    assert b4k3_generate.__version__ == version("b4k3-generate")
