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
- `needs_source_lengths` (optional, default False): True for a UniLM model (`application='unilm'`),
  whose prompt holds a source seen both ways. Its `build_cache(batch_size, max_length,
  source_lengths=...)` takes the `(batch,)` number of each row's first tokens that are the source
  (segment 0); the cache (a `SourceCache`) keeps them, and every later token is segment 1 and sees
  the whole source and the target tokens up to itself.
- `reads_prompt_lengths` (optional, default False): when True, the prefill's `call_with_cache`
  also gets `lengths=` `(batch,)`, each row's prompt length within the `T` tokens given; the
  tokens after it are padding that must not change the row's cache (a state model), whose
  `build_cache(batch_size, max_length, initial_states=...)` may also start from given states.

What the two other kinds of model add, within the same two methods:
- An encoder-decoder (T5) says so with `is_encoder_decoder = True` and names the token its
  decoder starts from, `decoder_start_token_id`. It takes its encoder's token ids (right-padded
  with its pad id, which is masked) in `build_cache(batch_size, max_length, encoder_inputs)`,
  encodes them once and keeps, per layer, the self-attention keys and values, the
  cross-attention keys and values computed once from the encoder output, and the encoder's
  padding mask; `call_with_cache` then reads decoder tokens only, its relative position bias
  computed from `index`, and `resize_cache` grows the self-attention part only. b4k3-generate
  then reads prompts as encoder inputs and decodes from `[decoder_start_token_id]`.
- A state model (RWKV6) keeps each layer's recurrent states in the cache: their size does not
  depend on `max_length`, `index` only tells which rows are at which step, it has no
  `resize_cache`, and it reads the prompt lengths in the prefill (`reads_prompt_lengths`).

`CachedDecoding` implements the protocol from the block protocol's hooks (`model_inputs`'s
`ModelInputs`, `apply_embeddings`, `apply_block`, `apply_final_layers`): positions come from the
cache index whatever the position scheme (rotary inside the attention from `cache_index`, learned
absolute through `decoding_inputs`' position ids, relative through `cache_position_bias`), and
the attention mask from the positions (for UniLM, from the running count of segment-1 tokens,
which orders the positions as UniLM's mask does).
"""

import typing

from b4k3_models.distribution import laid_out_cache
from b4k3_models.transformer import ATTENTION, ModelInputs
from b4k3_ops import ops


class SourceCache(typing.NamedTuple):
    """The cache of a UniLM model: the layers' keys and values, and each row's source length."""

    layers: list
    source_lengths: object  # (batch,) int32


def segment_counts(positions, source_lengths):
    """UniLM's order of positions: how many target (segment-1) tokens a row has up to each
    position, `max(position - source_length + 1, 0)`, the running sum of the segment ids that
    `masks.UniLMMask` compares. Position `i` attends to `j` when `count[j] <= count[i]`: the whole
    source, and the target up to itself."""
    lengths = ops.reshape(source_lengths, (-1,) + (1,) * (len(positions.shape) - 1))
    return ops.maximum(positions - lengths + 1, 0)


class CachedDecoding:
    """Mixin of `Transformer` families: `build_cache`, `resize_cache`, `call_with_cache` and
    `check_can_decode`, from the family's block protocol hooks."""

    @property
    def lm_head_activation(self):
        """The LM head's activation (`with_lm`: True is softmax, False none)."""
        return self.with_lm

    # True for UniLM models, whose cache keeps each row's source length (see the module docstring).
    needs_source_lengths = False

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
        if self.attention_caches:
            raise TypeError(f"{owner}: attention_caches (keys led by given sequences) is not supported when decoding")

    def build_cache(self, batch_size, max_length, dtype=None, source_lengths=None):
        """The empty KV cache: one `(batch, 2, max_length, kv_heads, head_size)` tensor per layer,
        in the attention's compute dtype unless `dtype` says otherwise, split across devices as the
        active `keras.distribution` says (`distribution.laid_out_cache`); for a UniLM model a
        `SourceCache` of them and `source_lengths` (one per row, or one for the batch)."""
        self.check_can_decode()
        owner = type(self).__name__
        if self.needs_source_lengths and source_lengths is None:
            raise TypeError(
                f"{owner} (UniLM) needs source_lengths: how many first tokens of each row are the source (segment 0)"
            )
        if not self.needs_source_lengths and source_lengths is not None:
            raise TypeError(f"{owner} has no source segment: source_lengths is for application='unilm' models")
        dtype = dtype or self.layers[self.prefixed(self.sublayer_name(0, ATTENTION))].compute_dtype
        shape = (batch_size, 2, max_length, self.num_attention_heads, self.attention_head_size)
        layers = [laid_out_cache(ops.zeros(shape, dtype=dtype)) for _ in range(self.num_hidden_layers)]
        if source_lengths is None:
            return layers
        source_lengths = ops.broadcast_to(ops.cast(source_lengths, "int32"), (batch_size,))
        return SourceCache(layers, source_lengths)

    def resize_cache(self, cache, max_length):
        """The cache with room for `max_length` positions: zero-padded (or cut) at the end."""
        if isinstance(cache, SourceCache):
            return cache._replace(layers=self.resize_cache(cache.layers, max_length))
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
        prompts). Each query sees the cached positions up to its own; with a `SourceCache`
        (UniLM), the whole source too. Returns `(outputs, cache)`.
        """
        layers, source_lengths = cache if isinstance(cache, SourceCache) else (cache, None)
        token_ids = ops.convert_to_tensor(inputs, "int32")
        index = ops.convert_to_tensor(index, "int32")
        batch_size, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        starts = index if len(index.shape) == 1 else ops.broadcast_to(index, (batch_size,))
        positions = starts[:, None] + ops.arange(length, dtype="int32")[None]
        key_positions = ops.arange(self.cache_length(layers), dtype="int32")[None, None]
        inputs = self.decoding_inputs(token_ids, positions)
        if source_lengths is not None:  # UniLM: the source is segment 0, the rest segment 1
            inputs = inputs._replace(segment_ids=ops.cast(positions >= source_lengths[:, None], "int32"))
        x = self.apply_embeddings(inputs)
        unilm = {} if source_lengths is None else {"source_lengths": source_lengths}  # only UniLM's hook takes it
        new_layers = []
        for layer_index, layer_cache in enumerate(layers):
            arguments = self.cache_attention_arguments(
                layer_index, positions, key_positions, layer_cache, index, **unilm
            )
            x, layer_cache = self.apply_block(x, layer_index, arguments)
            new_layers.append(layer_cache)
        new_cache = new_layers if source_lengths is None else SourceCache(new_layers, source_lengths)
        return self.apply_final_layers(x), new_cache

    def cache_length(self, cache):
        """The positions the cache has room for."""
        return ops.shape(cache[0])[2]

    def decoding_inputs(self, token_ids, positions):
        """The `ModelInputs` of a decoding step: the tokens and their `(batch, T)` positions."""
        return ModelInputs(token_ids, position_ids=positions)

    def cache_attention_arguments(self, layer_index, positions, key_positions, cache, index, source_lengths=None):
        """The attention's call arguments in block `layer_index` of a decoding step: the mask of
        the cached positions each token sees (with `source_lengths`, UniLM's), the cache, where to
        write it, the position bias."""
        if source_lengths is None:
            mask = self.cache_attention_mask(positions[:, :, None], key_positions, layer_index)
        else:
            query_counts = segment_counts(positions, source_lengths)[:, :, None]
            mask = segment_counts(key_positions, source_lengths) <= query_counts
        arguments = {
            "attention_bias": mask,
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
