"""A tiny random RWKV-6 saved as BlinkDL's `.pth`, its reference run, and b4k3's model of it."""

import pytest
from rwkv_checks import Reference, build_rwkv6, save_pth, tiny_state_dict


@pytest.fixture(scope="session")
def rwkv6_weights():
    return tiny_state_dict()


@pytest.fixture(scope="session")
def rwkv6_pth(rwkv6_weights, tmp_path_factory):
    return save_pth(rwkv6_weights, tmp_path_factory.mktemp("rwkv6") / "tiny-x060.pth")


@pytest.fixture(scope="session")
def reference(rwkv6_pth):
    return Reference(rwkv6_pth)


@pytest.fixture(scope="session")
def rwkv6(rwkv6_pth):
    """b4k3's RWKV6 of the `.pth` file, with logits out (its sizes read from the state dict)."""
    return build_rwkv6(rwkv6_pth)
