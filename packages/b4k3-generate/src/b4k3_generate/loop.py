"""The decode loop: prefill the prompts, then one token per step through a model's
`call_with_cache`, the logits processors and a sampler, each row stopping on its own.

`decode` is one function of tensors with static shapes, written with `keras.ops` (its loop is
`keras.ops.while_loop`), so it runs unchanged on every backend; `compiled_decoder` compiles it
where the backend allows: `jax.jit` with the model's variables passed in as state (a new prompt of
the same shape reuses the compiled loop), `tf.function` on TensorFlow, and plain eager execution
without autograd on torch (whose loop stops as soon as every row has ended).
"""

import dataclasses

import keras

from b4k3_generate.processors import process_logits
from b4k3_generate.samplers import next_token, step_seed
from b4k3_ops import ops


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


def decode(transformer, token_ids, prompt_lengths, end_positions, prompt_width, settings, seed):
    """Generates into `token_ids` `(batch, max_length)` int32, whose first `prompt_lengths[b]`
    entries of row `b` are its prompt, up to position `end_positions[b]` (excluded, at most
    `max_length`), and returns it.

    `prompt_width` (a Python int, at least the longest prompt) is how many positions the prefill
    runs over. Each row continues right after its own prompt, with its own positions; once it
    produces one of `settings.end_tokens`, the rest of the row holds the first end token. The loop
    ends when every row has ended or reached its end position.
    """
    batch_size, max_length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
    lengths = ops.cast(prompt_lengths, "int32")
    limits = ops.minimum(ops.cast(end_positions, "int32"), max_length)
    cache = transformer.build_cache(batch_size, max_length)
    logits, cache = transformer.call_with_cache(token_ids[:, :prompt_width], cache, 0)
    last_logits = ops.take_along_axis(logits, (lengths - 1)[:, None, None], axis=1)[:, 0]
    all_positions = ops.arange(max_length, dtype="int32")[None]
    fill = settings.end_tokens[0] if settings.end_tokens else 0

    def choose(logits, tokens, positions, step):
        context_mask = all_positions < positions[:, None]
        logits = process_logits(
            ops.cast(logits, "float32"),
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

    def write(tokens, token, positions, finished, step):
        """Writes each running row's token at its position; returns the new loop state."""
        token = ops.where(finished, fill, token)
        tokens = ops.where(all_positions == positions[:, None], token[:, None], tokens)
        ended = finished
        for end_token in settings.end_tokens:
            ended = ops.logical_or(ended, token == end_token)
        ended = ops.logical_or(ended, positions + 1 >= limits)
        return tokens, token, positions + 1, ended, step + 1

    tokens, token, positions, finished, _ = write(
        token_ids, choose(last_logits, token_ids, lengths, 0), lengths, lengths >= limits, 0
    )

    def keep_going(tokens, cache, token, positions, finished, step):
        return ops.logical_not(ops.all(finished))

    def one_step(tokens, cache, token, positions, finished, step):
        logits, cache = transformer.call_with_cache(token[:, None], cache, positions - 1)
        tokens, token, positions, finished, step = write(
            tokens, choose(logits[:, 0], tokens, positions, step), positions, finished, step
        )
        return tokens, cache, token, positions, finished, step

    tokens, *_ = ops.while_loop(
        keep_going, one_step, (tokens, cache, token, positions, finished, ops.convert_to_tensor(1, "int32"))
    )
    return _fill_after_end(tokens, lengths, limits, settings, fill)


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


def compiled_decoder(transformer, settings):
    """`run(token_ids, prompt_lengths, end_positions, prompt_width, seed)` for this backend (see the
    module's docstring)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_decoder(transformer, settings)
    if backend == "tensorflow":
        return _tensorflow_decoder(transformer, settings)
    if backend == "torch":
        return _torch_decoder(transformer, settings)
    raise ValueError(f"b4k3-generate runs on jax, torch or tensorflow, not the {backend!r} backend")


def _jax_decoder(transformer, settings):
    import jax

    variables = transformer.model.variables

    def run_stateless(values, token_ids, prompt_lengths, end_positions, seed, prompt_width):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return decode(transformer, token_ids, prompt_lengths, end_positions, prompt_width, settings, seed)

    jitted = jax.jit(run_stateless, static_argnums=5)

    def run(token_ids, prompt_lengths, end_positions, prompt_width, seed):
        values = [variable.value for variable in variables]
        return jitted(values, token_ids, prompt_lengths, end_positions, seed, prompt_width)

    return run


def _tensorflow_decoder(transformer, settings):
    import tensorflow as tf

    functions = {}

    def run(token_ids, prompt_lengths, end_positions, prompt_width, seed):
        if prompt_width not in functions:

            def run_graph(tokens, lengths, ends, seed):
                return decode(transformer, tokens, lengths, ends, prompt_width, settings, seed)

            functions[prompt_width] = tf.function(run_graph)
        return functions[prompt_width](token_ids, prompt_lengths, end_positions, seed)

    return run


def _torch_decoder(transformer, settings):
    import torch

    def run(token_ids, prompt_lengths, end_positions, prompt_width, seed):
        with torch.inference_mode():
            return decode(transformer, token_ids, prompt_lengths, end_positions, prompt_width, settings, seed)

    return run
