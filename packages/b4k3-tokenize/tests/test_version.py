from importlib.metadata import version

import b4k3_tokenize


def test_version_matches_the_distribution_metadata():
    assert b4k3_tokenize.__version__ == version("b4k3-tokenize")
