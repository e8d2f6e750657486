"""How the two naming conventions of checkpoints spell a dense layer, a norm and a table, so a
family writes its name map once for Google's TF names and Hugging Face's PyTorch names.

Google: `bert/encoder/layer_0/attention/self/query/kernel`, kernels stored `(in, out)` as Keras
has them. Hugging Face: `encoder.layer.0.attention.self.query.weight`, `Linear` weights stored
`(out, in)`, so kernels are transposed on the way in.
"""

import numpy as np

from b4k3_models.weight_maps import Weight, chained, fused_part, transposed, within


class CheckpointNames:
    """One naming convention; `sep` joins scopes, the methods give layers' variable maps."""

    sep = None
    kernel = bias = gamma = beta = table_suffix = None
    to_kernel = None  # the transform from a stored dense weight to a Keras kernel

    def scope(self, prefix):
        """A function from a '/'-separated path below `prefix` to the full scope in this naming."""
        return lambda path: self.sep.join([prefix, *path.split("/")])

    def table(self, scope):
        """The key of an embedding table."""
        return scope + self.table_suffix

    def dense(self, scope, use_bias=True):
        weights = {"kernel": Weight(f"{scope}{self.sep}{self.kernel}", self.to_kernel)}
        if use_bias:
            weights["bias"] = Weight(f"{scope}{self.sep}{self.bias}")
        return weights

    def norm(self, scope, offset=True):
        weights = {"gamma": Weight(f"{scope}{self.sep}{self.gamma}")}
        if offset:
            weights["beta"] = Weight(f"{scope}{self.sep}{self.beta}")
        return weights

    def attention(self, query, key, value, output, use_bias=True, o_bias=None):
        """A `MultiHeadAttention` (Dense mode) from its four projections' scopes."""
        o_bias = use_bias if o_bias is None else o_bias
        return {
            **within("q_dense", self.dense(query, use_bias)),
            **within("k_dense", self.dense(key, use_bias)),
            **within("v_dense", self.dense(value, use_bias)),
            **within("o_dense", self.dense(output, o_bias)),
        }

    def fused_attention(self, qkv, output, use_bias=True):
        """A `MultiHeadAttention` (Dense mode) from one fused q/k/v projection (GPT-2's `c_attn`)
        and the output projection."""
        weights = {}
        for index, sublayer in enumerate(("q_dense", "k_dense", "v_dense")):
            part = fused_part(index, 3)
            weights[f"{sublayer}/kernel"] = Weight(f"{qkv}{self.sep}{self.kernel}", chained(self.to_kernel, part))
            if use_bias:
                weights[f"{sublayer}/bias"] = Weight(f"{qkv}{self.sep}{self.bias}", part)
        weights.update(within("o_dense", self.dense(output, use_bias)))
        return weights

    def feed_forward(self, inputs, output, use_bias=True):
        """A `FeedForward` from the scopes of its input Dense layers (in order) and output Dense."""
        weights = {}
        for index, scope in enumerate(inputs):
            weights.update(within(f"i{index}_dense", self.dense(scope, use_bias)))
        weights.update(within("o_dense", self.dense(output, use_bias)))
        return weights


class GoogleNames(CheckpointNames):
    sep = "/"
    kernel, bias, gamma, beta, table_suffix = "kernel", "bias", "gamma", "beta", ""


class HuggingFaceNames(CheckpointNames):
    sep = "."
    kernel, bias, gamma, beta, table_suffix = "weight", "bias", "weight", "bias", ".weight"
    to_kernel = staticmethod(transposed)


class HuggingFaceConv1DNames(HuggingFaceNames):
    """Hugging Face GPT-2's `Conv1D` layers, whose weights are stored `(in, out)` (transposed
    relative to `Linear`): the Keras kernel as it is."""

    to_kernel = None


GOOGLE_NAMES = GoogleNames()
HF_NAMES = HuggingFaceNames()
HF_CONV1D_NAMES = HuggingFaceConv1DNames()


def hf_base_prefix(checkpoint, candidates):
    """The prefix of the base model's keys in a Hugging Face checkpoint: e.g. 'bert.' when saved
    from `BertForPreTraining`, '' when saved from `BertModel`."""
    for prefix in candidates:
        if any(key.startswith(prefix) for key in checkpoint):
            return prefix
    return ""


def tied_output_keys(checkpoint, embeddings_key, output_key="lm_head.weight"):
    """`[output_key]` when the checkpoint stores a tied model's output matrix as a copy of its
    token embeddings (known, not loaded); `[]` when it has none or one that differs (an untied
    checkpoint, whose matrix is then reported as unused)."""
    if output_key not in checkpoint or embeddings_key not in checkpoint:
        return []
    return [output_key] if np.array_equal(checkpoint.read(embeddings_key), checkpoint.read(output_key)) else []
