"""GlobalPointer and EfficientGlobalPointer against NumPy references written from Su Jianlin's
definitions, fp32 tolerance 1e-5 (relative and absolute). The common Keras checks come from
`layer_checks.run_layer_test`."""

import keras
import numpy as np
import pytest
from keras import ops
from layer_checks import assert_close, recording, run_layer_test, to_numpy

from b4k3_layers.embeddings import Embedding
from b4k3_layers.global_pointer import EfficientGlobalPointer, GlobalPointer

MASKED = -1e12  # the finite '-inf' of b4k3_ops.backend.infinity for float32
HEADS, HEAD_SIZE = 3, 8
X = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
MASK = np.array([[True] * 6, [True] * 4 + [False] * 2])


def dense(layer, x):
    """`x @ kernel + bias` of a Dense sublayer, in float64."""
    out = x.astype("float64") @ to_numpy(layer.kernel.value)
    return out + to_numpy(layer.bias.value) if layer.use_bias else out


def reference_rope(x):
    """Interleaved RoPE of `x` `(batch, seq_len, ..., dim)`: the pair (x[2i], x[2i+1]), read as
    x[2i] + 1j x[2i+1], is multiplied by exp(1j * p * 10000 ** (-2i / dim)) at position p."""
    seq_len, dim = x.shape[1], x.shape[-1]
    angles = np.arange(seq_len)[:, None] * 10000.0 ** (-2 * np.arange(dim // 2) / dim)
    turned = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * angles).reshape(seq_len, *[1] * (x.ndim - 3), -1)
    out = np.empty(x.shape)
    out[..., 0::2], out[..., 1::2] = turned.real, turned.imag
    return out


def reference_mask(logits, mask, tril_mask):
    """Spans with a padded start or end, and (tril_mask) spans with end < start, become MASKED."""
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep &= mask[:, None, :, None] & mask[:, None, None, :]
    if tril_mask:
        keep &= np.triu(np.ones(logits.shape[-2:], bool))
    return np.where(keep, logits, MASKED)


def reference_global_pointer(layer, x, mask):
    h = dense(layer.dense, x).reshape(*x.shape[:2], HEADS, 2 * HEAD_SIZE)
    q, k = h[..., :HEAD_SIZE], h[..., HEAD_SIZE:]
    if layer.RoPE:
        q, k = reference_rope(q), reference_rope(k)
    logits = np.einsum("bmhd,bnhd->bhmn", q, k) / np.sqrt(HEAD_SIZE)
    return reference_mask(logits, mask, layer.tril_mask)


def reference_efficient_global_pointer(layer, x, mask):
    p = dense(layer.p_dense, x)
    q, k = p[..., 0::2], p[..., 1::2]
    if layer.RoPE:
        q, k = reference_rope(q), reference_rope(k)
    logits = np.einsum("bmd,bnd->bmn", q, k) / np.sqrt(HEAD_SIZE)
    bias = dense(layer.q_dense, p) / 2  # (batch, seq_len, 2 * heads): per type, end bias then start bias
    end_bias = np.transpose(bias[..., 0::2], (0, 2, 1))[:, :, None, :]
    start_bias = np.transpose(bias[..., 1::2], (0, 2, 1))[:, :, :, None]
    return reference_mask(logits[:, None] + start_bias + end_bias, mask, layer.tril_mask)


CASES = [
    # (layer class, its NumPy reference)
    (GlobalPointer, reference_global_pointer),
    (EfficientGlobalPointer, reference_efficient_global_pointer),
]
OPTIONS = [
    {"RoPE": True, "tril_mask": True},
    {"RoPE": False, "tril_mask": True},
    {"RoPE": True, "tril_mask": False, "use_bias": False},
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize(("layer_class", "reference"), CASES)
def test_global_pointer_matches_reference_with_padding(layer_class, reference, options, tmp_path):
    make, made = recording(lambda: layer_class(HEADS, HEAD_SIZE, **options))
    out = run_layer_test(make, X, tmp_path)
    layer = made[0]
    assert out.shape == (2, HEADS, 6, 6)
    assert_close(out, reference(layer, X, None))
    assert_close(layer(X, mask=MASK), reference(layer, X, MASK))


@pytest.mark.parametrize(("layer_class", "reference"), CASES)
def test_global_pointer_reads_the_keras_mask_of_its_inputs(layer_class, reference, tmp_path):
    """Token ids -> Embedding(mask_zero=True) -> GlobalPointer: padding is masked with no `mask`
    argument, in the model and in the same model saved and reloaded."""
    ids = np.array([[5, 3, 7, 2, 1, 4], [6, 2, 9, 8, 0, 0]], dtype="int32")
    inputs = keras.Input((None,), dtype="int32")
    embedding, pointer = Embedding(10, 16, mask_zero=True), layer_class(HEADS, HEAD_SIZE)
    model = keras.Model(inputs, pointer(embedding(inputs)))
    expected = reference(pointer, to_numpy(embedding(ids)), ids != 0)
    assert_close(model(ids), expected)
    model.save(tmp_path / "pointer.keras")
    assert_close(keras.saving.load_model(tmp_path / "pointer.keras")(ids), expected)


def test_global_pointer_passes_no_mask_on():
    layer = GlobalPointer(HEADS, HEAD_SIZE)
    assert layer.compute_mask(ops.convert_to_tensor(X), ops.convert_to_tensor(MASK)) is None


@pytest.mark.parametrize("layer_class", [GlobalPointer, EfficientGlobalPointer])
def test_global_pointer_rejects_bad_arguments(layer_class):
    with pytest.raises(ValueError, match="head_size"):
        layer_class(HEADS, 7)  # RoPE rotates pairs of features
    with pytest.raises(ValueError, match="heads"):
        layer_class(0, HEAD_SIZE)
    with pytest.raises(ValueError, match="head_size"):
        layer_class(HEADS, -2, RoPE=False)
    assert layer_class(HEADS, 7, RoPE=False)(X).shape == (2, HEADS, 6, 6)
