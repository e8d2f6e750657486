"""The decode loop: prefill the prompts, then one token per step through a model's
`call_with_cache`, the logits processors and a sampler, each row stopping on its own.

`prefill`, `step`, `segment` (steps in a `keras.ops.while_loop`) and `resize` are functions of
tensors with static shapes, written with `keras.ops`, so they run unchanged on every backend;
`compiled` compiles them where the backend allows: `jax.jit` with the model's variables passed in
as state (a new prompt of the same shape reuses the compiled loop), `tf.function` with XLA on
TensorFlow, a TorchScript trace of the step on torch (`torch_trace`; or `torch.compile`), all
without autograd.

The KV cache grows in steps (`cache_lengths`): attention reads only as many positions as the
cache has room for, not the whole padded length, at the price of one compiled loop per length.
"""

import dataclasses
import typing

import keras

from b4k3_generate.heads import head_to_logits
from b4k3_generate.processors import process_logits
from b4k3_generate.samplers import next_token, seed_generator, step_seed
from b4k3_generate.torch_trace import traced
from b4k3_ops import ops
from b4k3_ops.cache_writes import caches_donated


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """What a generation does, fixed for one compiled loop."""

    end_tokens: tuple = ()
    search_mode: str = "greedy"
    k: object = 1
    penalty: float = 1.0
    temperature: float = 1.0
    mask_output: tuple | None = None
    penalty_window: int | None = None
    max_penalty_range: tuple | None = None


class LoopState(typing.NamedTuple):
    """The decode loop's state, a tuple of tensors (what the compiled loop carries)."""

    tokens: object  # (batch, max_length) int32: prompts, then the generated tokens
    cache: object  # the model's cache (`build_cache`)
    token: object  # (batch,) each row's last token
    positions: object  # (batch,) where each row's next token goes
    finished: object  # (batch,) bool: the rows that have ended
    step: object  # the number of steps taken
    lengths: object  # (batch,) the prompt lengths
    limits: object  # (batch,) each row's end position (excluded)
    seed: object  # (2,) int32


class DecodeLoop:
    """The generation of one transformer with one `DecodeSettings`, as functions of tensors of a
    `LoopState`."""

    def __init__(self, transformer, settings):
        self.transformer = transformer
        self.settings = settings
        self.fill = settings.end_tokens[0] if settings.end_tokens else 0
        self.forward = transformer.call_with_cache  # replaced by a traced one on torch (see `Decoder`)
        if settings.search_mode != "greedy":
            # Made now, not in the first trace: TensorFlow traces again a function that made a variable.
            seed_generator()
        self.to_logits = head_to_logits(transformer, settings.search_mode)

    def prefill(
        self, token_ids, prompt_lengths, end_positions, seed, prompt_width, cache_length=None, cache_inputs=None
    ):
        """Runs the prompts (the first `prompt_width` positions, a Python int at least the
        longest prompt) and chooses each row's first token: the initial loop state.

        `token_ids` `(batch, max_length)` int32 holds row `b`'s prompt in its first
        `prompt_lengths[b]` entries; the row is generated up to `end_positions[b]` (excluded).
        The cache has room for `cache_length` positions (a Python int, default `max_length`).
        `cache_inputs` are what the model's `build_cache` takes beyond the sizes, by name (an
        encoder-decoder's `encoder_inputs`, a UniLM model's `source_lengths`, a state model's
        `initial_states` to continue from; see `api.cache_inputs_of`).
        """
        token_ids, seed = ops.convert_to_tensor(token_ids, "int32"), ops.convert_to_tensor(seed, "int32")
        batch_size, max_length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        lengths = ops.cast(prompt_lengths, "int32")
        limits = ops.minimum(ops.cast(end_positions, "int32"), max_length)
        cache_inputs = keras.tree.map_structure(ops.convert_to_tensor, cache_inputs or {})
        cache = self.transformer.build_cache(batch_size, cache_length or max_length, **cache_inputs)
        # A state model must stop each row's state at its own prompt (a KV cache keeps the
        # padding's entries, overwritten before anything reads them).
        lengths_argument = {"lengths": lengths} if getattr(self.transformer, "reads_prompt_lengths", False) else {}
        logits, cache = self.transformer.call_with_cache(token_ids[:, :prompt_width], cache, 0, **lengths_argument)
        last_logits = ops.take_along_axis(logits, (lengths - 1)[:, None, None], axis=1)[:, 0]
        token = self.choose(last_logits, token_ids, lengths, seed, 0)
        state = LoopState(token_ids, cache, token, lengths, lengths >= limits, 0, lengths, limits, seed)
        return self.write(state, token)

    def step(self, state):
        """Feeds each row's last token at its position and writes the next one. The loop owns its
        cache and never reads a step's input cache again: the step may write into it (on torch)."""
        with caches_donated():
            logits, cache = self.forward(state.token[:, None], state.cache, state.positions - 1)
        token = self.choose(logits[:, 0], state.tokens, state.positions, state.seed, state.step)
        return self.write(state._replace(cache=cache), token)

    def choose(self, logits, tokens, positions, seed, step):
        """The next token of each row: processors (over the row's real tokens), then the sampler."""
        settings = self.settings
        context_mask = ops.arange(ops.shape(tokens)[1], dtype="int32")[None] < positions[:, None]
        logits = process_logits(
            self.to_logits(ops.cast(logits, "float32")),
            tokens,
            context_mask,
            penalty=settings.penalty,
            temperature=settings.temperature,
            mask_output=settings.mask_output,
            positions=positions,
            penalty_window=settings.penalty_window,
            max_penalty_range=settings.max_penalty_range,
        )
        return next_token(logits, settings.search_mode, settings.k, step_seed(seed, step))

    def write(self, state, token):
        """Writes each running row's `token` at its position (ended rows write the fill token)."""
        token = ops.where(state.finished, self.fill, token)
        at_position = ops.arange(ops.shape(state.tokens)[1], dtype="int32")[None] == state.positions[:, None]
        ended = ops.logical_or(state.finished, state.positions + 1 >= state.limits)
        for end_token in self.settings.end_tokens:
            ended = ops.logical_or(ended, token == end_token)
        return state._replace(
            tokens=ops.where(at_position, token[:, None], state.tokens),
            token=token,
            positions=state.positions + 1,
            finished=ended,
            step=ops.convert_to_tensor(state.step, "int32") + 1,
        )

    def segment(self, state, cache_length):
        """Steps while a row runs and every running row's next step fits a cache of
        `cache_length` positions (a Python int: the cache's length)."""
        state = ops.while_loop(
            lambda *s: self.fits(LoopState(*s), cache_length), lambda *s: tuple(self.step(LoopState(*s))), tuple(state)
        )
        return LoopState(*state)

    @staticmethod
    def fits(state, cache_length):
        """Whether a row still runs and no running row's next step (which writes its cache at
        `positions - 1`) falls past a cache of `cache_length` positions."""
        past = ops.logical_and(ops.logical_not(state.finished), state.positions > cache_length)
        return ops.logical_and(ops.logical_not(ops.all(state.finished)), ops.logical_not(ops.any(past)))

    def resize(self, state, cache_length):
        """The state with the cache grown to `cache_length` positions (a Python int)."""
        return state._replace(cache=self.transformer.resize_cache(state.cache, cache_length))

    def finish(self, state):
        return _fill_after_end(state.tokens, state.lengths, state.limits, self.settings, self.fill)


def _fill_after_end(tokens, lengths, limits, settings, fill):
    """Rows that ended early: every position after their end token (up to their end position)
    holds `fill` (the loop stops writing once all rows have ended; later positions are set here)."""
    if not settings.end_tokens:
        return tokens
    max_length = ops.shape(tokens)[1]
    positions = ops.arange(max_length, dtype="int32")[None]
    generated = ops.logical_and(positions >= lengths[:, None], positions < limits[:, None])
    is_end = ops.zeros_like(generated)
    for end_token in settings.end_tokens:
        is_end = ops.logical_or(is_end, tokens == end_token)
    is_end = ops.logical_and(is_end, generated)
    after_end = ops.cumsum(ops.cast(is_end, "int32"), axis=1) - ops.cast(is_end, "int32") > 0
    return ops.where(ops.logical_and(after_end, generated), fill, tokens)


# The shortest cache a generation starts with; it doubles until it holds the longest row.
SHORTEST_CACHE = 256


def cache_lengths(prompt_width, max_length, shortest=None):
    """The cache lengths a generation goes through: powers of two from `shortest` positions (and
    at least the prompt's), up to `max_length`, which ends the list. Each length is one more
    compiled loop (on jax and tensorflow); in exchange attention reads only the positions the
    cache has room for."""
    length = max(shortest or SHORTEST_CACHE, 1 << max(prompt_width - 1, 0).bit_length())
    lengths = []
    while length < max_length:
        lengths.append(length)
        length *= 2
    return [*lengths, max_length]


def check_jit_compile(jit_compile):
    if not (jit_compile is True or jit_compile is False or jit_compile == "auto"):
        raise ValueError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")


def compiled(transformer, function, static_argnums=(), jit_compile="auto"):
    """`function` (of tensors, calling the transformer's layers) compiled for this backend, as
    Keras' `jit_compile` does: with 'auto', under `jax.jit` with the model's variables passed in as
    state (so new inputs of the same shapes reuse the compiled code), `tf.function` with XLA on
    TensorFlow (about twice as fast per token as without), a TorchScript trace on torch (the
    same ops without Keras' Python around them: `torch_trace`); with True `torch.compile` on torch
    (slower to start: tens of seconds to compile a model); with False eagerly everywhere (the
    portable path, for debugging). Torch runs without autograd."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        if jit_compile is True:
            function = torch.compile(function)
        elif jit_compile == "auto":
            function = traced(decoding_variables(transformer), function)

        def run(*args):
            with torch.inference_mode():
                return function(*args)

        return run
    if jit_compile is False:
        return function
    if backend == "jax":
        import jax

        variables = decoding_variables(transformer)

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return function(*args)

        jitted = jax.jit(stateless, static_argnums=tuple(n + 1 for n in static_argnums))
        return lambda *args: jitted([variable.value for variable in variables], *args)
    if backend == "tensorflow":
        import tensorflow as tf

        graphs = {}

        def run(*args):
            static = tuple(args[n] for n in static_argnums)
            if static not in graphs:
                tensors = [n for n in range(len(args)) if n not in static_argnums]

                def graph(*tensor_args):
                    full = list(args)
                    for n, value in zip(tensors, tensor_args, strict=True):
                        full[n] = value
                    return function(*full)

                graphs[static] = tf.function(graph, jit_compile=True)
            return graphs[static](*(args[n] for n in range(len(args)) if n not in static_argnums))

        return run
    raise ValueError(f"b4k3-generate runs on jax, torch or tensorflow, not the {backend!r} backend")


def decoding_variables(transformer):
    """The variables `call_with_cache` reads: those of b4k3's Keras model (`transformer.model`), or
    the object's own when it is itself a Keras layer or model (a downstream decoder)."""
    if isinstance(transformer, keras.layers.Layer):
        return transformer.variables
    return transformer.model.variables
