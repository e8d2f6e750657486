"""How T5's checkpoints name its weights: Google's mesh-TF checkpoints of t5.1.0 / t5.1.1 and of mT5
(which says `rms_norm` where t5 says `layer_norm`), and Hugging Face's `t5` / `mt5` directories.

A stack is 'encoder' or 'decoder'; the relative position table is block 0's (UMT5: every
block's); sublayer `position` counts within a block (encoder:
0 attention, 1 feed-forward; decoder: 0 self-attention, 1 cross-attention, 2 feed-forward).
"""

import numpy as np

from b4k3_models.checkpoint_names import GOOGLE_NAMES, HF_NAMES
from b4k3_models.weight_maps import Weight, transposed

ATTENTION_SCOPES = {False: "SelfAttention", True: "EncDecAttention"}


def _lm_head(load_embeddings):
    """A `(vocab, hidden)` output matrix as the head's Dense kernel, `keep_tokens` applied."""
    return lambda weight: np.ascontiguousarray(load_embeddings(weight).T)


class GoogleT5Names:
    """mesh-TF names: `encoder/block_000/layer_000/SelfAttention/q` (kernels `(in, out)`, the
    relative table `(heads, buckets)`), `shared/embedding`, `decoder/logits/kernel`."""

    format = "tf"

    def __init__(self, norm="layer_norm", final_norm="final_layer_norm"):
        self.norm_name, self.final_norm_name = norm, final_norm

    def embeddings(self, load_embeddings):
        return {"embeddings": Weight("shared/embedding", load_embeddings)}

    def relative_position(self, stack, index=0):
        key = f"{self.scope(stack, index, 0)}/SelfAttention/relative_attention_bias"
        return {"embeddings": Weight(key, transposed)}

    def final_norm(self, stack):
        return {"gamma": Weight(f"{stack}/{self.final_norm_name}/scale")}

    @staticmethod
    def scope(stack, index, position):
        return f"{stack}/block_{index:03d}/layer_{position:03d}"

    def norm(self, stack, index, position):
        return {"gamma": Weight(f"{self.scope(stack, index, position)}/{self.norm_name}/scale")}

    def attention(self, stack, index, position, cross):
        scope = f"{self.scope(stack, index, position)}/{ATTENTION_SCOPES[cross]}"
        return {f"{name}_dense/kernel": Weight(f"{scope}/{name}") for name in "qkvo"}

    def feed_forward(self, stack, index, position, gated):
        scope = f"{self.scope(stack, index, position)}/DenseReluDense"
        inputs = [f"{scope}/wi_0", f"{scope}/wi_1"] if gated else [f"{scope}/wi"]
        return GOOGLE_NAMES.feed_forward(inputs, f"{scope}/wo", use_bias=False)

    def head(self, checkpoint, load_embeddings):
        return {"kernel": Weight("decoder/logits/kernel", lambda kernel: _lm_head(load_embeddings)(kernel.T))}

    @staticmethod
    def is_encoder_key(key):
        return key.startswith("encoder/")

    @staticmethod
    def is_decoder_key(key):
        return key.startswith("decoder/")


class HuggingFaceT5Names:
    """Hugging Face's names: `encoder.block.0.layer.0.SelfAttention.q.weight` (`Linear` weights
    `(out, in)`, the relative table `(buckets, heads)`), `shared.weight`, `lm_head.weight`."""

    format = "hf"

    def embeddings(self, load_embeddings):
        return {"embeddings": Weight("shared.weight", load_embeddings)}

    def relative_position(self, stack, index=0):
        return {"embeddings": Weight(f"{self.scope(stack, index, 0)}.SelfAttention.relative_attention_bias.weight")}

    def final_norm(self, stack):
        return HF_NAMES.norm(f"{stack}.final_layer_norm", offset=False)

    @staticmethod
    def scope(stack, index, position):
        return f"{stack}.block.{index}.layer.{position}"

    def norm(self, stack, index, position):
        return HF_NAMES.norm(f"{self.scope(stack, index, position)}.layer_norm", offset=False)

    def attention(self, stack, index, position, cross):
        scope = f"{self.scope(stack, index, position)}.{ATTENTION_SCOPES[cross]}"
        return HF_NAMES.attention(*(f"{scope}.{name}" for name in "qkvo"), use_bias=False)

    def feed_forward(self, stack, index, position, gated):
        scope = f"{self.scope(stack, index, position)}.DenseReluDense"
        inputs = [f"{scope}.wi_0", f"{scope}.wi_1"] if gated else [f"{scope}.wi"]
        return HF_NAMES.feed_forward(inputs, f"{scope}.wo", use_bias=False)

    def head(self, checkpoint, load_embeddings):
        """`lm_head.weight` when the file has it (an untied model), else the token embeddings:
        transformers 5 writes no `lm_head.weight` for any model it creates, tied or not."""
        key = "lm_head.weight" if "lm_head.weight" in checkpoint else "shared.weight"
        return {"kernel": Weight(key, _lm_head(load_embeddings))}

    @staticmethod
    def is_encoder_key(key):
        return key.startswith("encoder.")

    @staticmethod
    def is_decoder_key(key):
        return key.startswith("decoder.") or key == "lm_head.weight"


# The naming of a checkpoint: Hugging Face's ('hf'), or Google's for a T5 version.
T5_CHECKPOINT_NAMES = {
    "hf": HuggingFaceT5Names(),
    "t5.1.0": GoogleT5Names(),
    "t5.1.1": GoogleT5Names(),
    "mt5.1.1": GoogleT5Names(norm="rms_norm", final_norm="rms_norm"),
}
