"""attention_normalize against NumPy references of each normalization."""

import numpy as np
import pytest
from keras import ops

from b4k3_ops.backend import attention_normalize

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(2, 3, 4, 5)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
CAUSAL = np.tril(np.ones((4, 5), dtype=bool), k=1)[None, None]


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    return np.exp(x) / np.exp(x).sum(-1, keepdims=True)


def reference(a, method, bias=None):
    keep = np.broadcast_to(MASK[:, None, None, :], a.shape)
    if bias is not None:
        keep = keep & bias
    n = MASK.sum(-1)[:, None, None, None].astype("float32")
    if method in ("softmax", "softmax-fp32"):
        return softmax(np.where(keep, a, -1e12))
    if method == "squared_relu":
        return np.maximum(np.where(keep, a, 0), 0) ** 2 / n
    return softmax(np.where(keep, a, -1e12) * np.log(np.maximum(n, 16)) / np.log(512))


@pytest.mark.parametrize("method", ["softmax", "softmax-fp32", "squared_relu", "softmax_plus"])
@pytest.mark.parametrize("causal", [False, True])
def test_normalizations_match_their_definitions(method, causal):
    bias = CAUSAL if causal else None
    out = ops.convert_to_numpy(attention_normalize(LOGITS, MASK, -1, method, bias))
    np.testing.assert_allclose(out, reference(LOGITS, method, bias), rtol=1e-5, atol=1e-6)


def test_softmax_fp32_computes_in_float32_and_returns_the_input_dtype():
    half = LOGITS.astype("float16") * 30  # float16 softmax would lose these differences
    out = attention_normalize(half, MASK, -1, "softmax-fp32")
    assert ops.convert_to_numpy(out).dtype == np.float16
    np.testing.assert_allclose(ops.convert_to_numpy(out), reference(half.astype("float32"), "softmax"), atol=1e-3)


def test_unknown_normalization_is_refused():
    with pytest.raises(ValueError, match="normalization"):
        attention_normalize(LOGITS, method="sparsemax")
