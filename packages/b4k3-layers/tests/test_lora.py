"""enable_lora: one training step changes the LoRA adapters and the norms, nothing else, before and
after a `.keras` save and reload."""

import keras
import numpy as np
import pytest
from layer_checks import to_numpy

from b4k3_layers.attention import MultiHeadAttention
from b4k3_layers.embeddings import PositionEmbedding
from b4k3_layers.feed_forward import FeedForward
from b4k3_layers.lora import enable_lora
from b4k3_layers.norms import LayerNormalization


def tiny_model():
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 16, name="Embedding-Token")(tokens)
    x = MultiHeadAttention(heads=2, head_size=8, name="Attention")(x)
    x = LayerNormalization(name="Attention-Norm")(x)
    x = FeedForward(32, name="FeedForward")(x)
    logits = keras.layers.Dense(3, name="Classifier")(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, logits)


def values(model):
    return {w.path: to_numpy(w).copy() for w in model.weights}


def test_one_training_step_changes_only_adapters_and_norms():
    model = tiny_model()
    adapted = enable_lora(model, rank=2)
    assert {layer.name for layer in adapted} >= {"Embedding-Token", "q_dense", "o_dense", "i0_dense", "Classifier"}
    trainable = {w.path for w in model.trainable_weights}
    assert all("lora" in path or "Norm" in path for path in trainable), trainable
    assert any("Attention/q_dense/lora" in path for path in trainable), "adapters inside layers train too"

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    before = values(model)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.integers(0, 20, (4, 6)), rng.integers(0, 3, (4,)))
    changed = {path for path, value in values(model).items() if not np.array_equal(value, before[path])}
    assert changed, "the step changed nothing"
    assert changed <= trainable
    assert any("lora" in path for path in changed)


def test_targets_pick_layers_by_name():
    model = tiny_model()
    adapted = enable_lora(model, rank=4, alpha=8, targets=["q_dense", "v_dense"])
    assert sorted(layer.name for layer in adapted) == ["q_dense", "v_dense"]
    with pytest.raises(ValueError, match="no Dense"):
        enable_lora(tiny_model(), rank=2, targets=["nothing"])
    with pytest.raises(ValueError, match="rank"):
        enable_lora(tiny_model(), rank=0)


def tiny_b4k3_model():
    """b4k3's layers (adapters nested in MultiHeadAttention / FeedForward, a conditional norm's
    Dense, a position table) between Keras' own Embedding and a bias-free Dense head."""
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 16, name="Embedding-Token")(tokens)
    x = PositionEmbedding(6, 16, name="Embedding-Position")(x)
    x = MultiHeadAttention(heads=2, head_size=8, name="Attention")(x)
    condition = keras.layers.GlobalAveragePooling1D()(x)
    x = LayerNormalization(conditional=True, hidden_units=4, name="Attention-Norm")([x, condition])
    x = FeedForward(32, name="FeedForward")(x)
    logits = keras.layers.Dense(3, use_bias=False, name="Classifier")(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, logits)


def trained_step_changes(model, seed=0):
    """The paths of the weights one SGD step changes."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    before = values(model)
    rng = np.random.default_rng(seed)
    model.train_on_batch(rng.integers(0, 20, (4, 6)), rng.integers(0, 3, (4,)))
    return {path for path, value in values(model).items() if not np.array_equal(value, before[path])}


@pytest.mark.parametrize("targets", [None, ["q_dense", "i0_dense", "Classifier"]])
def test_a_reloaded_lora_model_trains_what_it_trained_before_saving(tmp_path, targets):
    model = tiny_b4k3_model()
    enable_lora(model, rank=2, targets=targets)
    trained_before = trained_step_changes(model)
    trainable = {weight.path for weight in model.trainable_weights}
    assert trained_before <= trainable
    assert any("Attention/q_dense/lora" in path for path in trained_before)
    inputs = np.random.default_rng(1).integers(0, 20, (2, 6))
    expected = to_numpy(model(inputs))

    model.save(tmp_path / "lora.keras")
    reloaded = keras.saving.load_model(tmp_path / "lora.keras")

    assert {weight.path for weight in reloaded.trainable_weights} == trainable
    np.testing.assert_allclose(to_numpy(reloaded(inputs)), expected, rtol=1e-5, atol=1e-5)
    # The adapters load zeroed (Keras merges them into the saved kernels); b4k3's must still train
    # (Keras' own top-level Embedding and Dense keep Keras' behaviour: theirs stay zero).
    trained_after = trained_step_changes(reloaded)
    assert trained_after <= trainable
    b4k3_adapters = {path for path in trained_before if "lora_kernel_b" in path and "/" in path.split("/", 1)[1]}
    assert b4k3_adapters
    assert b4k3_adapters <= trained_after
