from importlib.metadata import version

import b4k3_ops


def test_version_matches_the_distribution_metadata():
    assert b4k3_ops.__version__ == version("b4k3-ops")
