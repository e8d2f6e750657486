"""Language-model masks for bidirectional families: `LM_Mask` (causal) and `UniLM_Mask`
(bidirectional source, causal target), and the `extend_with_*` functions that add them."""

from b4k3_models.masks import CausalMask, UniLMMask


class LM_Mask:
    """Mixin: every attention layer sees only the current and earlier positions."""

    def compute_attention_bias(self, inputs=None):
        if self.attention_bias is None:
            self.attention_bias = self.apply(self.inputs[0], CausalMask, name="Attention-Mask")
        return self.attention_bias


class UniLM_Mask(LM_Mask):
    """Mixin: UniLM's seq2seq mask from the segment ids (the model's second input): segment 0 is
    the source, seen both ways; segment 1 the target, seen causally.

    It decodes with a KV cache (`decoding.CachedDecoding`) given each row's source length: the
    prompt's source attends to itself both ways, every later token is segment 1.
    """

    needs_source_lengths = True

    def check_can_decode(self):
        super().check_can_decode()
        if self.segment_attention:
            raise TypeError(
                f"{type(self).__name__}: segment_attention=True lets each target token see later ones, which a "
                "KV cache cannot give; build it without segment_attention to decode"
            )

    def compute_attention_bias(self, inputs=None):
        if self.attention_bias is None:
            if not getattr(self, "segment_vocab_size", 0):
                raise ValueError(f"{type(self).__name__}: UniLM needs segment ids; set segment_vocab_size > 0")
            self.attention_bias = self.apply(
                self.inputs[1], UniLMMask, segment_attention=self.segment_attention, name="Attention-Mask"
            )
        return self.attention_bias


def _with_mask(mask, BaseModel, kind):
    class Model(mask, BaseModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.with_mlm = self.with_mlm or True

    Model.__name__ = Model.__qualname__ = f"{kind}{BaseModel.__name__}"
    return Model


def extend_with_language_model(BaseModel):
    """`BaseModel` with a causal mask and its MLM head on (a left-to-right language model)."""
    return _with_mask(LM_Mask, BaseModel, "LanguageModel")


def extend_with_unified_language_model(BaseModel):
    """`BaseModel` with UniLM's mask and its MLM head on (seq2seq in one encoder)."""
    return _with_mask(UniLM_Mask, BaseModel, "UnifiedLanguageModel")
