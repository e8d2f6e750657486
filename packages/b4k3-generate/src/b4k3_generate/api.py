"""The two ways to generate: bert4keras3's `build_cache_model(...).predict(tokens)` and the
friendlier `generate(transformer, prompts, max_new_tokens, ...)` on ragged token-id lists."""

import collections
import numbers
import weakref

import keras
import numpy as np
from tqdm.auto import tqdm

from b4k3_generate.arguments import check_length, check_prompts, check_token_ids, check_transformer
from b4k3_generate.loop import (
    DecodeLoop,
    DecodeSettings,
    cache_lengths,
    check_jit_compile,
    compiled,
    decoding_variables,
)
from b4k3_generate.processors import check_processing
from b4k3_generate.samplers import check_sampling
from b4k3_generate.torch_trace import traced
from b4k3_ops.checks import check_bool

# The processing settings of a model without `generation_config`: none (DecodeSettings' defaults).
NO_PROCESSING = {
    name: getattr(DecodeSettings, name)
    for name in ("penalty", "temperature", "mask_output", "penalty_window", "max_penalty_range")
}


def decode_settings(transformer, end_token, search_mode, k, **overrides):
    """Validated `DecodeSettings`: the sampler's, and the processing the transformer was built
    with (`penalty`, `temperature`, ...), each overridable."""
    check_transformer(transformer)
    end_tokens = _end_tokens(end_token)
    check_token_ids(transformer, end_tokens, "end_token")
    check_sampling(search_mode, k)
    processing = {
        **NO_PROCESSING,
        **getattr(transformer, "generation_config", {}),  # optional in the protocol
        **{name: value for name, value in overrides.items() if value is not None},
    }
    check_processing(**processing)
    mask_output, penalty_range = processing["mask_output"], processing["max_penalty_range"]
    return DecodeSettings(
        end_tokens=end_tokens,
        search_mode=search_mode,
        k=tuple(k) if isinstance(k, (list, tuple)) else k,
        penalty=processing["penalty"],
        temperature=processing["temperature"],
        mask_output=None if mask_output is None else tuple(int(token) for token in mask_output),
        penalty_window=processing["penalty_window"],
        max_penalty_range=None if penalty_range is None else tuple(penalty_range),
    )


def _end_tokens(end_token):
    if end_token is None:
        return ()
    tokens = list(end_token) if isinstance(end_token, (list, tuple, np.ndarray)) else [end_token]
    for token in tokens:
        if isinstance(token, bool) or not isinstance(token, numbers.Integral) or token < 0:
            raise ValueError(f"end_token must be a token id or a list of them, got {end_token!r}")
    return tuple(int(token) for token in tokens)


def _seed(seed):
    """A `(2,)` int32 seed: the given int's, or a fresh one from NumPy's entropy."""
    if seed is None:
        seed = np.random.SeedSequence().generate_state(1)[0]
    elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an int (or None for fresh randomness), got {seed!r}")
    return np.array([0, int(seed) % (2**31)], dtype="int32")


class Decoder:
    """The compiled generation of one transformer with one `DecodeSettings`: the whole loop at
    once (`decode`), or step by step from Python (`steps`, for streaming and progress bars).

    The cache starts short and grows (`loop.cache_lengths`) when the model can resize it. JAX and
    TensorFlow compile a loop per cache length (`segment`); torch runs the steps from Python (one
    host check per step, to stop or grow), each step a TorchScript trace (one per cache length),
    or under `torch.compile` when `jit_compile=True` (then with one full-length cache: a new shape
    would compile again). A sampling step on torch traces only the model: torch's random draw reads
    its seed on the host, which a trace would freeze at the first step's.
    """

    def __init__(self, transformer, settings, jit_compile="auto"):
        loop = DecodeLoop(transformer, settings)
        on_torch = keras.backend.backend() == "torch"
        self.grows = hasattr(transformer, "resize_cache") and not (on_torch and jit_compile is True)
        self._prefill = compiled(transformer, loop.prefill, (4, 5), False if on_torch else jit_compile)
        step_compile = jit_compile
        if on_torch and jit_compile == "auto" and settings.search_mode != "greedy":
            loop.forward = traced(decoding_variables(transformer), loop.forward)
            step_compile = False
        self._step = compiled(transformer, loop.step, jit_compile=step_compile)
        self._resize = compiled(transformer, loop.resize, (1,), False if on_torch else jit_compile)
        self._finish = compiled(transformer, loop.finish, jit_compile=False if on_torch else jit_compile)
        self._segment = None if on_torch else compiled(transformer, loop.segment, (1,), jit_compile)

    def cache_lengths(self, prompt_width, max_length):
        return cache_lengths(prompt_width, max_length) if self.grows else [max_length]

    def decode(self, token_ids, prompt_lengths, end_positions, seed, prompt_width, cache_inputs=None):
        """The `(batch, max_length)` tokens: prompts, generated tokens, end-token fill.
        `cache_inputs`: what the model's `build_cache` takes beyond the sizes (`cache_inputs_of`)."""
        if self._segment is None:
            states = self.states(token_ids, prompt_lengths, end_positions, seed, prompt_width, cache_inputs)
            return self._finish(collections.deque(states, maxlen=1)[0])  # the last state
        lengths = self.cache_lengths(prompt_width, np.shape(token_ids)[1])
        state = self._prefill(token_ids, prompt_lengths, end_positions, seed, prompt_width, lengths[0], cache_inputs)
        state = self._segment(state, lengths[0])
        for length in lengths[1:]:
            if bool(keras.ops.all(state.finished)):
                break
            state = self._segment(self._resize(state, length), length)
        return self._finish(state)

    def steps(self, token_ids, prompt_lengths, end_positions, seed, prompt_width, cache_inputs=None):
        """Yields `(tokens, running)` after each step: the `(batch,)` tokens just written and which
        rows were still running when they were (NumPy); returns the finished buffer."""
        running = np.ones(len(prompt_lengths), dtype=bool)
        for state in self.states(token_ids, prompt_lengths, end_positions, seed, prompt_width, cache_inputs):
            yield keras.ops.convert_to_numpy(state.token), running
            running = ~keras.ops.convert_to_numpy(state.finished)
        return keras.ops.convert_to_numpy(self._finish(state))

    def states(self, token_ids, prompt_lengths, end_positions, seed, prompt_width, cache_inputs=None):
        """Yields the loop state after the prefill and after each step, until every row has
        ended; the cache grows before a step that would not fit it. One host check per step."""
        lengths = self.cache_lengths(prompt_width, np.shape(token_ids)[1])
        state = self._prefill(token_ids, prompt_lengths, end_positions, seed, prompt_width, lengths[0], cache_inputs)
        while True:
            yield state
            running = ~keras.ops.convert_to_numpy(state.finished)
            if not running.any():
                return
            if len(lengths) > 1 and keras.ops.convert_to_numpy(state.positions)[running].max() > lengths[0]:
                lengths = lengths[1:]
                state = self._resize(state, lengths[0])
            state = self._step(state)


# One decoder per transformer, settings and jit_compile, reused by every call that asks for the
# same (compiling is the slow part) while the model keeps its variables; dropped with the transformer.
_DECODERS = weakref.WeakKeyDictionary()


def decoder(transformer, settings, jit_compile="auto"):
    """The `Decoder` of `transformer` with `settings`, compiled once for the model's current
    variables: a model whose variables were replaced since (`model.quantize('int8')`, LoRA
    adapters added) is compiled again, where the old compiled loop would still read the old ones."""
    variables = tuple(id(variable) for variable in decoding_variables(transformer))
    decoders = _DECODERS.setdefault(transformer, {})
    if (settings, jit_compile, variables) not in decoders:
        decoders[settings, jit_compile, variables] = Decoder(transformer, settings, jit_compile)
    return decoders[settings, jit_compile, variables]


class CacheModel:
    """A generator built by `build_cache_model`: `predict(tokens)` fills each row after its prompt.

    Each instance compiles its own loop with its own settings: two generators built from one
    transformer never share state (the predecessor reused the first one silently).
    """

    def __init__(self, transformer, input_lengths, settings, index_bias=0, progress_print=False, jit_compile="auto"):
        lengths = list(input_lengths) if isinstance(input_lengths, (list, tuple)) else [input_lengths]
        self.encoder_decoder = getattr(transformer, "is_encoder_decoder", False)  # optional in the protocol
        if self.encoder_decoder:
            if len(lengths) != 2 or not (lengths[0] is None or _is_positive_int(lengths[0])):
                raise ValueError(
                    "input_lengths of an encoder-decoder are [encoder length (or None: any), decoder length], "
                    f"got {input_lengths!r}"
                )
            self.encoder_length, lengths = lengths[0], lengths[1:]
        if not lengths or not all(_is_positive_int(n) for n in lengths):
            raise ValueError(f"input_lengths must be positive ints, one per model input, got {input_lengths!r}")
        check_length(transformer, int(lengths[0]))
        self.transformer = transformer
        self.max_length = int(lengths[0])
        self.settings = settings
        self.index_bias = index_bias
        self.progress_print = progress_print
        self._decoder = Decoder(transformer, settings, jit_compile)

    def prompt_lengths(self, tokens):
        """Each row's prompt ends at its last non-zero token (trailing zeros are padding; a 0 inside
        a prompt is a token); at least `index_bias` positions and one token count."""
        nonzero = tokens != 0
        last = np.where(nonzero.any(axis=1), tokens.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
        return np.maximum(last, max(1, self.index_bias)).astype("int32")

    def predict(self, tokens, prompt_lengths=None, seed=None, cache=None):
        """`tokens` `(batch, <= max_length)` int prompts, right-padded with 0 -> `(batch, max_length)`
        int32: each prompt followed by its generated tokens, rows ended with `end_token` filled with
        it. `prompt_lengths` overrides the trailing-zero rule (for prompts that end with token 0).

        An encoder-decoder takes `[encoder tokens, decoder tokens]`: the encoder's `(batch, len)`
        right-padded with its pad id, and the decoder's prompts as above, each starting with the
        decoder start token (T5: 0, so build with `index_bias=1`). A UniLM model takes `[tokens,
        segments]`, as bert4keras3's cache model did: each row's source is its tokens before the
        first segment id 1 (the whole prompt when it has none); the segment ids after the prompt
        are ignored (every generated token is segment 1). A state model (RWKV6) may start from
        `cache`, the states (one row per prompt) after an earlier text."""
        encoder_inputs = sources = None
        if self.encoder_decoder:
            encoder_inputs, tokens = self.split_encoder_inputs(tokens)
        tokens, sources = self.split_segments(tokens)
        tokens = np.asarray(tokens, dtype="int32")
        if tokens.ndim != 2 or tokens.shape[1] > self.max_length:
            raise ValueError(f"tokens must be (batch, <= {self.max_length}) token ids, got shape {tokens.shape}")
        buffer = np.zeros((tokens.shape[0], self.max_length), dtype="int32")
        buffer[:, : tokens.shape[1]] = tokens
        lengths = self.prompt_lengths(tokens) if prompt_lengths is None else np.asarray(prompt_lengths, "int32")
        if lengths.shape != (len(tokens),) or np.any(lengths < 1) or np.any(lengths > tokens.shape[1]):
            raise ValueError(
                f"prompt lengths must be one per row, in 1..{tokens.shape[1]} (the tokens given): {lengths.tolist()}"
            )
        check_token_ids(self.transformer, tokens)
        width = int(tokens.shape[1])
        ends = np.full_like(lengths, self.max_length)
        if encoder_inputs is not None and len(encoder_inputs) != len(tokens):
            raise ValueError(f"{len(encoder_inputs)} rows of encoder tokens for {len(tokens)} rows of decoder tokens")
        if sources is not None:
            sources = np.minimum(sources, lengths).astype("int32")
        inputs = cache_inputs_of(self.transformer, lengths, encoder_inputs, sources, initial_states=cache)
        if not self.progress_print:
            return keras.ops.convert_to_numpy(self._decoder.decode(buffer, lengths, ends, _seed(seed), width, inputs))
        steps = self._decoder.steps(buffer, lengths, ends, _seed(seed), width, inputs)
        with tqdm(total=int((ends - lengths).max()), desc="generating", unit="token") as bar:
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    return done.value
                bar.update()

    def split_segments(self, inputs):
        """`(tokens, source lengths)`: the source lengths from the segment ids of a UniLM model's
        `[tokens, segments]` (None otherwise: the loop takes the prompts as sources)."""
        if not getattr(self.transformer, "needs_source_lengths", False):
            return inputs, None
        if not (isinstance(inputs, (list, tuple)) and len(inputs) == 2):
            raise ValueError(
                f"{type(self.transformer).__name__} (UniLM) generates from [tokens, segments]: segment 0 marks each "
                "row's source, 1 what follows it"
            )
        tokens, segments = (np.asarray(each, dtype="int32") for each in inputs)
        if segments.shape != tokens.shape or not np.isin(segments, (0, 1)).all():
            raise ValueError(
                f"the segments must be 0 (source) or 1 (target), shaped as the tokens {tokens.shape}, got "
                f"shape {segments.shape} with values {np.unique(segments).tolist()[:5]}"
            )
        targets = segments == 1
        sources = np.where(targets.any(axis=1), np.argmax(targets, axis=1), tokens.shape[1])
        return tokens, sources

    def split_encoder_inputs(self, tokens):
        """`(encoder tokens, decoder tokens)` of an encoder-decoder's `predict` input, checked."""
        if not (isinstance(tokens, (list, tuple)) and len(tokens) == 2):
            raise ValueError(
                f"{type(self.transformer).__name__} is an encoder-decoder: predict takes "
                "[encoder tokens, decoder tokens]"
            )
        encoder_inputs = np.asarray(tokens[0], dtype="int32")
        if encoder_inputs.ndim != 2 or (
            self.encoder_length is not None and encoder_inputs.shape[1] > self.encoder_length
        ):
            raise ValueError(
                f"encoder tokens must be (batch, <= {self.encoder_length or 'any'}) token ids, got shape "
                f"{encoder_inputs.shape}"
            )
        check_token_ids(self.transformer, encoder_inputs, "encoder token ids")
        return encoder_inputs, tokens[1]


def _is_positive_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def build_cache_model(
    transformer,
    input_lengths,
    end_token,
    search_mode="greedy",
    k=1,
    progress_print=False,
    index_bias=0,
    jit_compile="auto",
    initial=True,
):
    """bert4keras3's generator: `build_cache_model(...).predict(tokens)` (see `CacheModel`).

    Args:
        transformer: a b4k3 model object (`build_transformer_model(..., return_keras_model=False)`).
        input_lengths: the total length (prompt + generated) of each model input, e.g. `[256]`;
            an encoder-decoder's `[encoder length or None, decoder length]`.
        end_token: an id or a list of ids; a row stops at the first it produces.
        search_mode: 'greedy', 'topk' (k an int) or 'topp' (k a probability, or `[p, topk]`).
        k: the sampler's setting.
        progress_print: show a progress bar while decoding.
        index_bias: positions always counted as prompt (T5's decoder start token is a 0).
        jit_compile: as Keras' `jit_compile`: 'auto' compiles the loop on jax (`jax.jit`) and
            tensorflow (`tf.function` with XLA) and runs torch eagerly; True also compiles torch's step
            with `torch.compile` (several times faster per token, slow to compile); False runs
            eagerly everywhere (for debugging).
        initial: bert4keras3 ran the new cache model once on dummy inputs to build its layers;
            b4k3's cache model has no layers of its own (it drives the model's) and compiles its
            loop at the first `predict`, so True and False behave the same.
    """
    settings = decode_settings(transformer, end_token, search_mode, k)
    check_jit_compile(jit_compile)
    check_bool("build_cache_model", initial=initial)  # bert4keras3's; nothing left for it to do
    return CacheModel(transformer, input_lengths, settings, index_bias, progress_print, jit_compile)


def generate(
    transformer,
    prompts,
    max_new_tokens,
    end_token=None,
    search_mode="greedy",
    k=1,
    seed=None,
    penalty=None,
    temperature=None,
    mask_output=None,
    penalty_window=None,
    max_penalty_range=None,
    jit_compile="auto",
    cache=None,
):
    """Continues each prompt (a list of token-id lists, any lengths) by up to `max_new_tokens`
    tokens; returns each row's new tokens (up to and including its end token).

    Args:
        end_token: an id or a list of ids; each row stops at the first it produces.
        search_mode, k: 'greedy'; 'topk' with k an int; 'topp' with k a probability or `[p, topk]`.
        seed: an int for reproducible sampling (default: fresh randomness).
        penalty, temperature, mask_output, penalty_window, max_penalty_range: the processing;
            unset ones come from the transformer (the arguments given to build_transformer_model).
        jit_compile: 'auto', True or False, as in `build_cache_model`.
        cache: a state model's states (one row per prompt) to continue from, e.g. those RWKV6's
            `read` returns after an earlier text; default the model's initial ones.
    """
    settings, buffer, lengths, ends, width, inputs = _batch(
        transformer,
        prompts,
        max_new_tokens,
        end_token,
        search_mode,
        k,
        jit_compile,
        penalty=penalty,
        temperature=temperature,
        mask_output=mask_output,
        penalty_window=penalty_window,
        max_penalty_range=max_penalty_range,
        initial_states=cache,
    )
    output = decoder(transformer, settings, jit_compile).decode(buffer, lengths, ends, _seed(seed), width, inputs)
    output = keras.ops.convert_to_numpy(output)
    return [
        _new_tokens(output[row, length : length + max_new_tokens], settings.end_tokens)
        for row, length in enumerate(lengths)
    ]


def stream(
    transformer,
    prompts,
    max_new_tokens,
    end_token=None,
    search_mode="greedy",
    k=1,
    seed=None,
    penalty=None,
    temperature=None,
    mask_output=None,
    penalty_window=None,
    max_penalty_range=None,
    jit_compile="auto",
    cache=None,
):
    """`generate`, yielding as the tokens are produced: at each step, one entry per row, the token
    it just produced or None once it has ended. Same arguments as `generate`."""
    settings, buffer, lengths, ends, width, inputs = _batch(
        transformer,
        prompts,
        max_new_tokens,
        end_token,
        search_mode,
        k,
        jit_compile,
        penalty=penalty,
        temperature=temperature,
        mask_output=mask_output,
        penalty_window=penalty_window,
        max_penalty_range=max_penalty_range,
        initial_states=cache,
    )
    steps = decoder(transformer, settings, jit_compile).steps(buffer, lengths, ends, _seed(seed), width, inputs)
    for tokens, running in steps:
        yield [int(token) if is_running else None for token, is_running in zip(tokens, running, strict=True)]


BUFFER_MULTIPLE, PREFILL_MULTIPLE = 64, 16


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def _batch(
    transformer, prompts, max_new_tokens, end_token, search_mode, k, jit_compile, initial_states=None, **processing
):
    """The settings and the `(buffer, lengths, end positions, prompt width, cache inputs)` of a
    list of prompts; `processing` is the caller's processing settings (None: the transformer's).

    For an encoder-decoder (`is_encoder_decoder`) the prompts are the encoder's inputs,
    right-padded with its `pad_token_id`, and each row's decoder starts from
    `[decoder_start_token_id]`; `cache_inputs` says what its `build_cache` is given."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    check_transformer(transformer)
    prompts = check_prompts(prompts)
    check_jit_compile(jit_compile)
    settings = decode_settings(transformer, end_token, search_mode, k, **processing)
    for prompt in prompts:
        check_token_ids(transformer, prompt)
    encoder_inputs = None
    if getattr(transformer, "is_encoder_decoder", False):  # optional in the protocol
        encoder_width = _round_up(max(len(prompt) for prompt in prompts), PREFILL_MULTIPLE)
        encoder_inputs = _padded(prompts, encoder_width, transformer.pad_token_id)
        prompts = [[transformer.decoder_start_token_id] for _ in prompts]
    lengths = np.array([len(prompt) for prompt in prompts], dtype="int32")
    check_length(transformer, int(lengths.max()) + max_new_tokens)
    # Shapes rounded up, so calls with other lengths reuse a compiled loop: the buffer to a multiple
    # of 64 positions (rows still stop at their own end), the prefill to 16 (padding past a row's
    # prompt is written to its cache, then overwritten by its own tokens before anything reads it).
    total = _round_up(int(lengths.max()) + max_new_tokens, BUFFER_MULTIPLE)
    width = min(_round_up(int(lengths.max()), PREFILL_MULTIPLE), total)
    inputs = cache_inputs_of(transformer, lengths, encoder_inputs, initial_states=initial_states)
    return settings, _padded(prompts, total), lengths, lengths + max_new_tokens, width, inputs


def cache_inputs_of(transformer, prompt_lengths, encoder_inputs=None, source_lengths=None, initial_states=None):
    """What the model's `build_cache` takes beyond the batch size and length, by name (None when
    nothing): an encoder-decoder's `encoder_inputs` (`is_encoder_decoder`), a UniLM model's
    `source_lengths` (`needs_source_lengths`; by default each row's whole prompt is its source),
    a state model's `initial_states` to continue from (`reads_prompt_lengths`)."""
    if initial_states is not None:
        if not getattr(transformer, "reads_prompt_lengths", False):  # optional in the protocol
            raise ValueError(
                f"cache= continues a state model's states (RWKV6); {type(transformer).__name__} keeps keys and "
                "values instead: give the earlier text and the new one together as the prompt"
            )
        return {"initial_states": initial_states}
    if getattr(transformer, "is_encoder_decoder", False):  # optional in the protocol
        return {"encoder_inputs": encoder_inputs}
    if getattr(transformer, "needs_source_lengths", False):  # optional in the protocol
        return {"source_lengths": prompt_lengths if source_lengths is None else source_lengths}
    return None


def _padded(prompts, width, pad_id=0):
    """`(len(prompts), width)` int32: each prompt followed by `pad_id`."""
    buffer = np.full((len(prompts), width), pad_id, dtype="int32")
    for row, prompt in enumerate(prompts):
        buffer[row, : len(prompt)] = prompt
    return buffer


def _new_tokens(row, end_tokens):
    for position, token in enumerate(row):
        if token in end_tokens:
            return row[: position + 1].tolist()
    return row.tolist()
