"""`RWKV6` (`bert4keras3.models.RWKV6`): RWKV-6 "Finch" on b4k3's block protocol, its official
checkpoint names, the decoding protocol of b4k3-generate with the recurrent state as the cache,
and state tuning.

Blocks are pre-norm: `x + TimeMix(LN(x))`, then `x + ChannelMix(LN(x))`, named as bert4keras3
named them (`RWKV-0-TimeMix`, `RWKV-0-TimeMix-Norm`, ...). The cache of decoding holds per layer
what the `rwkv` package's state holds: the TimeMix time-shift state `(batch, hidden)`, the wkv
state `(batch, heads, head_size, head_size)` and the ChannelMix time-shift state; its size does
not depend on the length, so there is no `resize_cache`.
"""

import keras
import numpy as np

from b4k3_layers import LayerNormalization
from b4k3_models.checkpoint_names import HF_NAMES
from b4k3_models.transformer import ModelInputs, Transformer
from b4k3_models.weight_maps import Weight, within
from b4k3_ops import ops
from b4k3_rwkv.checkpoint import (
    flat,
    mix_columns,
    mix_matrix,
    open_rwkv_checkpoint,
    per_head,
    rwkv6_config,
    time_state,
)
from b4k3_rwkv.layers import MIXES, ChannelMix, TimeMix
from b4k3_rwkv.state_io import StateCacheModel

TIME_MIX, CHANNEL_MIX = "TimeMix", "ChannelMix"


class RWKV6(Transformer):
    """RWKV-6 (Finch) language model.

    Args:
        decomposer_size: rank of the five token-mix projections (`time_maa_w1` is `(hidden, 5 *
            decomposer_size)`; 32 in the released models).
        with_lm: the LM head: True (softmax), 'linear' (logits), another activation, or False (none:
            the final hidden states).
        time_decay_size: rank of the decay projection (`time_decay_w1`; 64 in the released models).
        rwkv_kernel: the wkv form of sequences, 'chunked' (default) or 'recurrent'.
        chunk_size: tokens per chunk of the chunked form.
        layer_norm_eps: epsilon of the layer norms (RWKV: 1e-5).
        **kwargs: the arguments of `Transformer` (`num_attention_heads` is the number of heads,
            `attention_head_size` their size, 64 in RWKV-6; `intermediate_size` the ChannelMix width).
    """

    embedding_steps = ("token", "norm", "dropout")
    optional_layers = ("RWKV-LM",)  # a checkpoint's head is expected even without one (with_lm=False)
    norm_placement = "pre"
    norm_layer = LayerNormalization

    def __init__(
        self,
        decomposer_size,
        with_lm=True,
        time_decay_size=64,
        rwkv_kernel="chunked",
        chunk_size=32,
        layer_norm_eps=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.decomposer_size = decomposer_size
        self.with_lm = with_lm
        self.time_decay_size = time_decay_size
        self.rwkv_kernel = rwkv_kernel
        self.chunk_size = chunk_size
        self.layer_norm_eps = layer_norm_eps

    # Block protocol

    def sublayer_name(self, index, sublayer):
        return f"RWKV-{index}-{sublayer}"

    def norm_arguments(self):
        return {"epsilon": self.layer_norm_eps}

    def embed_norm(self, x, inputs):
        """`blocks.0.ln0`, on the token embeddings."""
        return self.apply_norm(x, "Embedding-Norm")

    def attention_layer(self, index):
        return {
            "layer": TimeMix,
            "rwkv_kernel": self.rwkv_kernel,
            "hidden_size": self.hidden_size,
            "decomposer_size": self.decomposer_size,
            "head_size": self.attention_head_size,
            "time_decay_size": self.time_decay_size,
            "chunk_size": self.chunk_size,
        }

    def feed_forward_layer(self, index):
        return {"layer": ChannelMix, "hidden_size": self.hidden_size, "expand_size": self.intermediate_size}

    def attention_arguments(self, index):
        """No masks: each token reads the past through the state only."""
        return {}

    def apply_block(self, x, index, arguments):
        """TimeMix then ChannelMix. With `arguments['cache']` (the layer's three states, decoding),
        returns `(x, new states)`; else `(x, None)`."""
        cache, lengths = arguments.get("cache"), arguments.get("lengths")
        if cache is None:
            x, _ = self.apply_sublayer(x, index, TIME_MIX, self.attention_layer(index))
            x, _ = self.apply_sublayer(x, index, CHANNEL_MIX, self.feed_forward_layer(index))
            return x, None
        time_shift, wkv_state, channel_shift = cache
        time_arguments = {"cache": (time_shift, wkv_state), "lengths": lengths}
        x, (time_shift, wkv_state) = self.apply_sublayer(
            x, index, TIME_MIX, self.attention_layer(index), time_arguments
        )
        channel_arguments = {"cache": channel_shift, "lengths": lengths}
        x, channel_shift = self.apply_sublayer(x, index, CHANNEL_MIX, self.feed_forward_layer(index), channel_arguments)
        return x, (time_shift, wkv_state, channel_shift)

    def apply_final_layers(self, inputs):
        x = self.apply_norm(inputs, "Output-Norm")
        if not self.with_lm:
            return x
        x = self.apply(
            x,
            keras.layers.Dense,
            units=self.vocab_size,
            use_bias=False,
            kernel_initializer=self.initializer,
            name="RWKV-LM",
        )
        return self.apply_lm_activation(x, name="RWKV-LM-Activation")

    # Decoding protocol (see b4k3_models.decoding)

    # The prefill must stop each row's state at its own prompt: the loop passes `lengths`.
    reads_prompt_lengths = True
    max_positions = None

    @property
    def lm_head_activation(self):
        return self.with_lm

    def check_can_decode(self):
        if not self.built:
            raise TypeError(f"{type(self).__name__} is not built yet: call build() (build_transformer_model does)")

    def mixing_layers(self, index):
        """Block `index`'s `(TimeMix, ChannelMix)` layers."""
        return tuple(self.layers[self.prefixed(self.sublayer_name(index, name))] for name in (TIME_MIX, CHANNEL_MIX))

    def build_cache(self, batch_size, max_length=None, initial_states=None):
        """The initial states of every layer: `[(time shift, wkv, channel shift), ...]`, zeros or
        the trained initial states of state tuning, or `initial_states` (the states after an
        earlier text, as `read` returns them) when given. `max_length` is ignored (constant size)."""
        self.check_can_decode()
        if initial_states is not None:
            return self.checked_states(initial_states, batch_size)
        cache = []
        for index in range(self.num_hidden_layers):
            time_mix, channel_mix = self.mixing_layers(index)
            shift_shape = (batch_size, self.hidden_size)
            cache.append(
                (
                    _initial(time_mix.initial_shift, shift_shape),
                    _initial(
                        time_mix.initial_state,
                        (batch_size, time_mix.heads, self.attention_head_size, self.attention_head_size),
                    ),
                    _initial(channel_mix.initial_shift, shift_shape),
                )
            )
        return cache

    def checked_states(self, states, batch_size):
        """`states` as the cache, after checking they are one `(time shift, wkv, channel shift)`
        per layer with `batch_size` rows (a clear error instead of a shape failure mid-graph)."""
        states = [tuple(layer) for layer in states]
        if len(states) != self.num_hidden_layers or any(len(layer) != 3 for layer in states):
            raise ValueError(
                f"cache must be the states of {type(self).__name__}.read or .build_cache: one (time shift, wkv, "
                f"channel shift) per layer, {self.num_hidden_layers} layers; got {len(states)} entries"
            )
        rows = {ops.shape(state)[0] for layer in states for state in layer}
        if isinstance(batch_size, int) and all(isinstance(n, int) for n in rows) and rows != {batch_size}:
            raise ValueError(f"cache holds states of {sorted(rows)} rows for {batch_size} prompts: read one per prompt")
        return states

    def call_with_cache(self, inputs, cache, index=None, lengths=None):
        """The LM head's outputs `(batch, T, vocab)` for the token ids `inputs` read after the
        states `cache`, and the states after them. `index` is not needed (no positions); `lengths`
        `(batch,)`: each row's valid tokens (the rest leave its states as they are)."""
        token_ids = ops.convert_to_tensor(inputs, "int32")
        if lengths is not None:
            lengths = ops.convert_to_tensor(lengths, "int32")
        x = self.apply_embeddings(ModelInputs(token_ids))
        new_cache = []
        for layer_index, layer_cache in enumerate(cache):
            x, layer_cache = self.apply_block(x, layer_index, {"cache": layer_cache, "lengths": lengths})
            new_cache.append(layer_cache)
        return self.apply_final_layers(x), new_cache

    def read(self, token_ids, state=None):
        """The states after reading each row of `token_ids` (token-id lists, any lengths) from
        `state` (default the initial states): what `generate(..., cache=)` continues from."""
        rows = [list(row) for row in token_ids]
        if not rows or not all(rows):
            raise ValueError("read needs at least one row, and every row at least one token")
        lengths = np.array([len(row) for row in rows], dtype="int32")
        padded = np.zeros((len(rows), lengths.max()), dtype="int32")
        for index, row in enumerate(rows):
            padded[index, : len(row)] = row
        _, state = self.call_with_cache(
            padded, self.build_cache(len(rows)) if state is None else state, lengths=lengths
        )
        return state

    def build_cache_model(
        self,
        input_lengths,
        end_token,
        search_mode="greedy",
        k=1,
        progress_print=False,
        index_bias=0,
        input_state=False,
        output_state=False,
        jit_compile="auto",
    ):
        """bert4keras3's generator (b4k3-generate's `build_cache_model`), with `input_state`:
        `predict([tokens, state])` starts from `state`, and `output_state`: it returns `[tokens,
        state after them]` (see `state_io.StateCacheModel`)."""
        cache_model = super().build_cache_model(
            input_lengths, end_token, search_mode, k, progress_print, index_bias, jit_compile
        )
        if not (input_state or output_state):
            return cache_model
        return StateCacheModel(self, cache_model, input_state, output_state)

    # State tuning

    def enable_state_tuning(self, time_shift_tuning=False):
        """Makes the initial states the only trainable weights (with LoRA adapters, if enabled):
        every layer's wkv state, and with `time_shift_tuning` its two time-shift states."""
        for layer in self.model._flatten_layers(include_self=False):
            if isinstance(layer, (TimeMix, ChannelMix)):
                layer.enable_state_tuning(time_shift_tuning)
            else:
                for weight in layer.weights:
                    if "lora_" not in weight.path:
                        weight.trainable = False

    def enable_state_tunig(self, time_shitf_tuning=False):
        """bert4keras3's spelling of `enable_state_tuning`."""
        self.enable_state_tuning(time_shitf_tuning)

    # Checkpoints

    @classmethod
    def config_from_checkpoint(cls, checkpoint, config):
        """`(reader, config)`: the sizes the checkpoint's arrays imply, merged with `config` (from
        a config file or arguments), which must agree with them."""
        reader = open_rwkv_checkpoint(checkpoint)
        implied = rwkv6_config(reader)
        disagree = {
            key: (config[key], value) for key, value in implied.items() if key in config and config[key] != value
        }
        if disagree:
            described = ", ".join(
                f"{key}={given!r} (the checkpoint has {value!r})" for key, (given, value) in disagree.items()
            )
            raise ValueError(f"The config disagrees with the checkpoint {reader.source}: {described}; fix or drop them")
        return reader, {**config, **implied}

    def load_weights_from_checkpoint(self, checkpoint, mapping=None):
        """Loads an official RWKV-6 state dict: a `.pth` file, a `.safetensors` file or a dict.
        A state-tuned one (RWKV-PEFT merged, with `blocks.{i}.att.time_state`) also sets the wkv
        states every text starts from, as the `rwkv` package does."""
        reader = open_rwkv_checkpoint(checkpoint)
        if any(key.endswith(".att.time_state") for key in reader):
            for index in range(self.num_hidden_layers):
                self.mixing_layers(index)[0].add_initial_state()
        return super().load_weights_from_checkpoint(reader, mapping)

    def load_time_state(self, checkpoint):
        """Loads an RWKV-PEFT state-tuning file (`blocks.{i}.att.time_state` `(heads, head_size,
        head_size)` per layer, values first) as the initial wkv states; every key must fit."""
        reader = open_rwkv_checkpoint(checkpoint)
        try:
            keys = [f"blocks.{index}.att.time_state" for index in range(self.num_hidden_layers)]
            shape = (self.num_attention_heads, self.attention_head_size, self.attention_head_size)
            problems = [f"{key}: missing" for key in keys if key not in reader]
            problems += [
                f"{key}: {reader.shape(key)}, expected {shape}"
                for key in keys
                if key in reader and reader.shape(key) != shape
            ]
            problems += [f"{key}: not a state of this model" for key in reader if key not in keys]
            if problems:
                raise ValueError(
                    f"The state file {reader.source} does not fit {type(self).__name__}: " + "; ".join(problems)
                )
            for index, key in enumerate(keys):
                time_mix = self.mixing_layers(index)[0]
                time_mix.add_initial_state()
                time_mix.initial_state.assign(time_state(reader.read(key)))
        finally:
            reader.close()

    def variable_mapping(self, checkpoint):
        mapping = {
            "Embedding-Token": {"embeddings": Weight("emb.weight", self.load_embeddings)},
            "Embedding-Norm": HF_NAMES.norm("blocks.0.ln0"),
            "Output-Norm": HF_NAMES.norm("ln_out"),
            "RWKV-LM": {"kernel": Weight("head.weight", self.lm_head_kernel)},
        }
        for index in range(self.num_hidden_layers):
            block = f"blocks.{index}"
            time_mix, channel_mix = (self.sublayer_name(index, name) for name in (TIME_MIX, CHANNEL_MIX))
            mapping[f"{time_mix}-Norm"] = HF_NAMES.norm(f"{block}.ln1")
            mapping[f"{channel_mix}-Norm"] = HF_NAMES.norm(f"{block}.ln2")
            mapping[time_mix] = self.time_mix_weights(f"{block}.att")
            if self.mixing_layers(index)[0].initial_state is not None:
                mapping[time_mix]["initial_state"] = Weight(f"{block}.att.time_state", time_state)
            mapping[channel_mix] = {
                "time_mix_k": Weight(f"{block}.ffn.time_maa_k", flat),
                "time_mix_r": Weight(f"{block}.ffn.time_maa_r", flat),
                **within("dense_k", HF_NAMES.dense(f"{block}.ffn.key", use_bias=False)),
                **within("dense_v", HF_NAMES.dense(f"{block}.ffn.value", use_bias=False)),
                **within("dense_r", HF_NAMES.dense(f"{block}.ffn.receptance", use_bias=False)),
            }
        return mapping

    def time_mix_weights(self, scope):
        weights = {
            "time_mix_x": Weight(f"{scope}.time_maa_x", flat),
            "time_faaaa": Weight(f"{scope}.time_faaaa"),
            "decomposed_dense_w/dense_a/kernel": Weight(f"{scope}.time_decay_w1"),
            "decomposed_dense_w/dense_b/kernel": Weight(f"{scope}.time_decay_w2"),
            "decomposed_dense_w/dense_b/bias": Weight(f"{scope}.time_decay", flat),
            "group_ln/scale": Weight(f"{scope}.ln_x.weight", per_head(self.num_attention_heads)),
            "group_ln/offset": Weight(f"{scope}.ln_x.bias", per_head(self.num_attention_heads)),
        }
        for index, mix in enumerate(MIXES):
            sublayer = f"decomposed_dense_x{mix}"
            weights[f"{sublayer}/dense_a/kernel"] = Weight(
                f"{scope}.time_maa_w1", mix_columns(index, self.decomposer_size)
            )
            weights[f"{sublayer}/dense_b/kernel"] = Weight(f"{scope}.time_maa_w2", mix_matrix(index))
            weights[f"{sublayer}/dense_b/bias"] = Weight(f"{scope}.time_maa_{mix}", flat)
        for name, official in (("r", "receptance"), ("k", "key"), ("v", "value"), ("g", "gate"), ("o", "output")):
            weights.update(within(f"dense_{name}", HF_NAMES.dense(f"{scope}.{official}", use_bias=False)))
        return weights

    def lm_head_kernel(self, weight):
        """`head.weight` `(vocab, hidden)` as the Dense kernel, `keep_tokens` applied."""
        return np.ascontiguousarray(self.load_embeddings(weight).T)


def _initial(variable, shape):
    """A state of `shape`: the trained initial state broadcast over the batch, or zeros."""
    if variable is None:
        return ops.zeros(shape, "float32")
    return ops.broadcast_to(ops.cast(variable, "float32"), shape)
