from importlib.metadata import version

import b4k3_rwkv


def test_version_matches_the_distribution_metadata():
    assert b4k3_rwkv.__version__ == version("b4k3-rwkv")
