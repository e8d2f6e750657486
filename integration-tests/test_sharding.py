"""Under `keras.distribution`, b4k3 models sharded by `get_layout_map` compute what the unsharded
ones do, on JAX with 8 simulated CPU devices in a child process (`sharding_checks.py`; the device
count must be set before JAX starts): a tiny Llama and a tiny BERT under a 2 x 4 (batch x model)
`ModelParallel` (logits, weights really split, one `fit` step, greedy generation with the KV cache
split by heads), and a BERT trained under an 8-device `DataParallel`. Keras 3 shards variables
through `keras.distribution` on the JAX backend only (its TensorFlow backend places values but
creates no sharded variables, torch has none)."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

HERE = pathlib.Path(__file__).parent
# fp32 tolerance of a sharded computation against the unsharded one (sums in another order).
ATOL = 1e-5


@pytest.fixture(scope="module")
def sharded():
    """What `sharding_checks.py` measured in a JAX process with 8 CPU devices."""
    if keras.backend.backend() != "jax":
        pytest.skip("keras.distribution shards variables on the JAX backend only")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "PYTHONPATH": os.pathsep.join(
            [str(HERE), str(HERE.parent / "packages" / "b4k3-models" / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    child = subprocess.run(
        [sys.executable, str(HERE / "sharding_checks.py")], env=env, capture_output=True, text=True, timeout=600
    )
    assert child.returncode == 0, child.stderr[-4000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("family", ["llama", "bert"])
def test_model_parallel_gives_the_unsharded_outputs(sharded, family):
    assert sharded["devices"] == 8
    assert sharded[family]["logits_difference"] < ATOL


@pytest.mark.parametrize("family", ["llama", "bert"])
def test_model_parallel_weights_are_really_split_four_ways(sharded, family):
    for path, (spec, share) in sharded[family]["shardings"].items():
        assert "model" in spec, path
        assert share == 0.25, path


@pytest.mark.parametrize("family", ["llama", "bert"])
def test_model_parallel_fit_step_trains_as_unsharded(sharded, family):
    sharded_loss, loss = sharded[family]["fit_loss"]
    assert abs(sharded_loss - loss) < ATOL
    assert sharded[family]["fit_kernel_difference"] < ATOL


def test_model_parallel_greedy_generation_gives_the_unsharded_tokens_with_the_cache_split_by_heads(sharded):
    sharded_tokens, tokens = sharded["llama"]["greedy"]
    assert sharded_tokens == tokens
    assert sharded["llama"]["cache_spec"] == [None, None, None, "model", None]


def test_data_parallel_training_on_8_devices_equals_one_device(sharded):
    losses = sharded["data_parallel"]["losses"]
    assert abs(losses[0] - losses[1]) < ATOL
    assert sharded["data_parallel"]["weights_difference"] < ATOL
