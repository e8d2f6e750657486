"""`get_layout_map` shards b4k3 models the Megatron way and refuses a mesh it cannot shard them on
(on every backend: a layout map reads only names and sizes). That a sharded model computes what
the unsharded one does is shown on 8 simulated JAX devices by integration-tests/test_sharding.py."""

import keras
import pytest
from family_checks import TINY_BERT_ARGUMENTS

from b4k3_models import build_transformer_model, get_layout_map
from b4k3_models.distribution import KV_CACHE_PATH


def mesh(shape=(2, 4), axis_names=("batch", "model")):
    """A device mesh of placeholder devices: a layout map reads only its shape and axis names."""
    return keras.distribution.DeviceMesh(shape, axis_names, [f"cpu:{index}" for index in range(8)])


def axes(layout_map, path):
    layout = layout_map[path]
    return None if layout is None else tuple(layout.axes)


@pytest.fixture(scope="module")
def llama():
    return build_transformer_model(
        model="llama",
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        query_head=8,
        intermediate_size=40,
        return_keras_model=False,
    )


def test_llama_projections_are_split_megatron_style_and_small_kv_heads_replicated(llama):
    layout_map = get_layout_map(llama, mesh())
    attention = "Transformer-1-MultiHeadSelfAttention"
    assert axes(layout_map, f"{attention}/q_dense/kernel") == (None, "model")
    assert axes(layout_map, f"{attention}/o_dense/kernel") == ("model", None)
    # 2 key/value heads cannot be split 4 ways: replicated, and so is the KV cache.
    assert axes(layout_map, f"{attention}/k_dense/kernel") is None
    assert axes(layout_map, KV_CACHE_PATH) is None
    assert axes(layout_map, "Transformer-0-FeedForward/feedforward_gate_dense/kernel") == (None, "model")
    assert axes(layout_map, "Transformer-0-FeedForward/feedforward_output_dense/kernel") == ("model", None)
    assert axes(layout_map, "Embedding-Token/embeddings") == ("model", None)
    assert axes(layout_map, "Decoder-Output-LM/kernel") == (None, "model")
    assert axes(layout_map, "Output-Norm/scale") is None
    # The keys match any block index: the map of two blocks serves a deeper model.
    assert axes(layout_map, "Transformer-31-MultiHeadSelfAttention/q_dense/kernel") == (None, "model")


def test_bert_vocabulary_that_does_not_divide_is_split_by_hidden_size():
    bert = build_transformer_model(**{**TINY_BERT_ARGUMENTS, "intermediate_size": 40})
    layout_map = get_layout_map(bert, mesh())
    assert axes(layout_map, "Embedding-Token/embeddings") == (None, "model")  # 99 rows, 32 columns
    assert axes(layout_map, "Transformer-0-MultiHeadSelfAttention/k_dense/bias") == ("model",)
    assert axes(layout_map, "Transformer-0-MultiHeadSelfAttention/o_dense/bias") is None
    assert axes(layout_map, "Embedding-Position/embeddings") is None


def test_a_mesh_without_the_named_axis_is_refused(llama):
    with pytest.raises(ValueError, match=r"axes \['data', 'model'\], not 'batch'"):
        get_layout_map(llama, mesh(axis_names=("data", "model")))


def test_query_heads_or_feed_forward_width_that_do_not_divide_are_refused(llama):
    with pytest.raises(ValueError, match=r"number of query heads \(8\) is not a multiple of the model axis size \(3\)"):
        get_layout_map(llama, keras.distribution.DeviceMesh((1, 3), ("batch", "model"), ["cpu:0"] * 3))
    bert = build_transformer_model(**TINY_BERT_ARGUMENTS)  # intermediate_size 37
    with pytest.raises(ValueError, match=r"i0_dense: its output width \(37\) is not a multiple of .* \(4\)"):
        get_layout_map(bert, mesh())
