"""The decoding protocol, implemented once for every family built on the block protocol.

This is the whole contract between a model object and b4k3-generate (DESIGN.md, "Generation
protocol"); b4k3-generate reads nothing else:

- `build_cache(batch_size, max_length)` -> the initial cache: a list with one entry per layer
  (here the keys and values, `(batch, 2, max_length, kv_heads, head_size)`).
- `call_with_cache(inputs, cache, index)` -> `(outputs, cache)`: the LM head's outputs
  `(batch, T, vocab)` for the token ids `inputs` `(batch, T)` at positions `index .. index + T - 1`,
  and the cache with their keys and values written in. `index` is one position for the batch (an
  int or a 0-d tensor) or a `(batch,)` tensor, each row at its own position (ragged prompts). It
  is a pure function of its tensors and the model's variables: it runs under `jax.jit`,
  `tf.function` (XLA) and `torch.compile`, and carries no state from the graph build or from an
  earlier call.
- `resize_cache(cache, max_length)` (optional) -> the cache with room for `max_length` positions,
  zero-padded or cut at the end. With it the loop starts with a short cache and grows it, so
  attention reads only the positions the cache has room for.
- `check_can_decode()` (optional) -> raises a TypeError saying why this model cannot decode and
  what to do (a BERT built without `application='lm'`, RealFormer residual attention, ...).
- `vocab_size`: token ids (prompts, end tokens) are checked against it.
- `generation_config`: a dict of the default processing settings (`penalty`, `penalty_window`,
  `max_penalty_range`, `temperature`, `mask_output`), overridable per call.
- `model.variables`: the Keras model's variables, passed into the compiled loop as state on JAX.
- `lm_head_activation`: what `call_with_cache` outputs: True or 'softmax' (probabilities, which
  the loop samples through their logarithm), 'linear' (logits), or False (no LM head: refused).
- `max_positions`: the most positions the model can read (learned absolute positions), or None
  (rotary and relative positions have no bound); a longer generation is refused before it starts.
- `reads_prompt_lengths` (optional, default False): when True, the prefill's `call_with_cache`
  also gets `lengths=` `(batch,)`, each row's prompt length within the `T` tokens given; the
  tokens after it are padding that must not change the row's cache (a state model).

What the two other kinds of model add, within the same two methods:
- An encoder-decoder (T5) takes its encoder's inputs in `build_cache(batch_size, max_length,
  encoder_inputs)`, encodes them once and keeps the cross-attention keys and values (and the
  encoder's padding mask) in the cache beside each layer's self-attention keys and values;
  `call_with_cache` then reads decoder tokens only, its relative position bias computed from
  `index`.
- A state model (RWKV6) keeps each layer's recurrent states in the cache: their size does not
  depend on `max_length`, `index` only tells which rows are at which step, it has no
  `resize_cache`, and it reads the prompt lengths in the prefill (`reads_prompt_lengths`).

`CachedDecoding` implements the protocol from the block protocol's hooks (`model_inputs`'s
`ModelInputs`, `apply_embeddings`, `apply_block`, `apply_final_layers`): positions come from the
cache index whatever the position scheme (rotary inside the attention from `cache_index`, learned
absolute through `decoding_inputs`' position ids, relative through `cache_position_bias`), and
the attention mask from the positions.
"""

from b4k3_models.transformer import ATTENTION, ModelInputs, block_layer_name
from b4k3_ops import ops


class CachedDecoding:
    """Mixin of `Transformer` families: `build_cache`, `resize_cache`, `call_with_cache` and
    `check_can_decode`, from the family's block protocol hooks."""

    @property
    def lm_head_activation(self):
        """The LM head's activation (`with_lm`: True is softmax, False none)."""
        return self.with_lm

    @property
    def max_positions(self):
        """None: rotary and relative positions have no bound. Families with learned absolute
        positions return the size of their table."""
        return None

    def check_can_decode(self):
        """Raises a TypeError naming what keeps this model from decoding with a KV cache."""
        owner = type(self).__name__
        if not self.built:
            raise TypeError(f"{owner} is not built yet: call build() (build_transformer_model does)")
        if self.residual_attention_scores:
            raise TypeError(f"{owner}: residual_attention_scores (RealFormer) is not supported when decoding")
        if self.layer_norm_conds[0] is not None:
            raise TypeError(f"{owner}: a conditional layer norm (layer_norm_cond) is not supported when decoding")

    def build_cache(self, batch_size, max_length, dtype=None):
        """The empty KV cache: one `(batch, 2, max_length, kv_heads, head_size)` tensor per layer,
        in the attention's compute dtype unless `dtype` says otherwise."""
        self.check_can_decode()
        dtype = dtype or self.layers[self.prefixed(block_layer_name(0, ATTENTION))].compute_dtype
        shape = (batch_size, 2, max_length, self.num_attention_heads, self.attention_head_size)
        return [ops.zeros(shape, dtype=dtype) for _ in range(self.num_hidden_layers)]

    def resize_cache(self, cache, max_length):
        """The cache with room for `max_length` positions: zero-padded (or cut) at the end."""
        length = ops.shape(cache[0])[2]
        if max_length <= length:
            return [layer_cache[:, :, :max_length] for layer_cache in cache]
        padding = [[0, 0], [0, 0], [0, max_length - length], [0, 0], [0, 0]]
        return [ops.pad(layer_cache, padding) for layer_cache in cache]

    def call_with_cache(self, inputs, cache, index):
        """The LM head's output for `inputs` (`(batch, T)` token ids at positions `index ..
        index + T - 1`) and the cache with their keys and values written in.

        `index` is one position for every row (an int or a 0-d tensor: the prompt's prefill at 0,
        or lock-step decoding) or a `(batch,)` tensor, each row at its own position (ragged
        prompts). Each query sees the cached positions up to its own. Returns `(outputs, cache)`.
        """
        token_ids = ops.convert_to_tensor(inputs, "int32")
        index = ops.convert_to_tensor(index, "int32")
        batch_size, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        starts = index if len(index.shape) == 1 else ops.broadcast_to(index, (batch_size,))
        positions = starts[:, None] + ops.arange(length, dtype="int32")[None]
        key_positions = ops.arange(ops.shape(cache[0])[2], dtype="int32")[None, None]
        x = self.apply_embeddings(self.decoding_inputs(token_ids, positions))
        new_cache = []
        for layer_index, layer_cache in enumerate(cache):
            arguments = self.cache_attention_arguments(layer_index, positions, key_positions, layer_cache, index)
            x, layer_cache = self.apply_block(x, layer_index, arguments)
            new_cache.append(layer_cache)
        return self.apply_final_layers(x), new_cache

    def decoding_inputs(self, token_ids, positions):
        """The `ModelInputs` of a decoding step: the tokens and their `(batch, T)` positions."""
        return ModelInputs(token_ids, position_ids=positions)

    def cache_attention_arguments(self, layer_index, positions, key_positions, cache, index):
        """The attention's call arguments in block `layer_index` of a decoding step: the mask of
        the cached positions each token sees, the cache, where to write it, the position bias."""
        arguments = {
            "attention_bias": self.cache_attention_mask(positions[:, :, None], key_positions, layer_index),
            "cache": cache,
            "cache_index": index,
        }
        if self.position_bias_kind is not None:
            arguments["p_bias"] = self.position_bias_kind
        if self.position_bias_kind not in (None, "rotary"):
            arguments["position_bias"] = self.cache_position_bias(positions, key_positions[0], layer_index)
        return arguments

    def cache_attention_mask(self, query_positions, key_positions, layer_index):
        """`(batch, T, max_length)` bool: which cached positions each new token attends to."""
        return key_positions <= query_positions

    def cache_position_bias(self, query_positions, key_positions, layer_index):
        """The relative position bias between `(batch, T)` query and `(1, max_length)` key
        positions, for families with a relative `position_bias_kind` (NEZHA, T5)."""
        raise NotImplementedError(f"{type(self).__name__} must define cache_position_bias to decode")
