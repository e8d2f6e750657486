"""What the model-family tests share: tiny Hugging Face configs, saving random Hugging Face models
as checkpoints, padded and ragged batches, running a Keras model to NumPy, the fp32 comparison,
and the two model-level drivers a family's test file calls:

- `run_family_parity_test`: a Hugging Face directory loaded by b4k3 gives the reference's outputs
  on a padded batch;
- `run_decoding_protocol_test`: the decoding protocol (`build_cache`, `call_with_cache`) gives the
  full pass's outputs, prefilled then token by token, and for ragged rows each from its own length.

Every model is built from a config here (nothing is downloaded).
"""

import contextlib
import json
import pathlib
import re

import keras
import numpy as np
import safetensors.numpy
import torch
import transformers

from b4k3_models import BERT, build_transformer_model

TINY_BERT = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
}
TINY_ROBERTA = {**TINY_BERT, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1}
TINY_ROBERTA.update(layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2)
# The sizes and activation of TINY_BERT as b4k3 BERT arguments, for models built without a checkpoint.
BERT_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
TINY_BERT_ARGUMENTS = {
    name: value
    for name, value in BERT.from_hf_config(TINY_BERT).items()
    if name in (*BERT_SIZES, "max_position", "hidden_act")
}

# Decoder weights are drawn with a standard deviation ten times Hugging Face's default, so that
# attention logits and final logits are large enough for Gemma2's soft caps to bite.
INITIALIZER_RANGE = 0.2

# A RoFormer with factorized embeddings (embedding_size < hidden_size), its matrices drawn at std 0.2.
TINY_ROFORMER = {**TINY_BERT, "embedding_size": 24, "initializer_range": INITIALIZER_RANGE}

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10_000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # Short enough that every rotary frequency of the tiny heads is scaled or smoothed.
    "original_max_position_embeddings": 8,
}
TINY_LLAMA = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 40,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "initializer_range": INITIALIZER_RANGE,
}
TINY_LLAMA_GQA = {**TINY_LLAMA, "rope_parameters": LLAMA3_ROPE, "tie_word_embeddings": False}
TINY_LLAMA_TIED = {**TINY_LLAMA, "tie_word_embeddings": True}
# Llama's optional biases (attention and feed-forward), linear rope scaling and heads wider than
# hidden_size / heads.
TINY_LLAMA_BIASES = {
    **TINY_LLAMA,
    "head_dim": 16,
    "attention_bias": True,
    "mlp_bias": True,
    "rope_parameters": {"rope_type": "linear", "rope_theta": 10_000.0, "factor": 2.0},
}
TINY_QWEN2 = {**TINY_LLAMA, "rope_parameters": {"rope_type": "default", "rope_theta": 1_000.0}}
# head_dim 16 while hidden_size / heads is 8: the projections are wider than the hidden size.
TINY_GEMMA = {**TINY_LLAMA, "num_key_value_heads": 1, "head_dim": 16, "tie_word_embeddings": True}
TINY_GEMMA2 = {
    **TINY_LLAMA,
    "head_dim": 16,
    "tie_word_embeddings": True,
    "sliding_window": 4,
    "query_pre_attn_scalar": 24,
    "attn_logit_softcapping": 2.0,
    "final_logit_softcapping": 1.5,
}

# GPT-2 and OpenAI GPT, whose weights Hugging Face also draws with `initializer_range`.
TINY_GPT2 = {"vocab_size": 64, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64}
TINY_GPT2["initializer_range"] = INITIALIZER_RANGE

# decoder family -> (Hugging Face causal LM class, its config class, tiny config)
TINY_MODELS = {
    "llama_gqa": (transformers.LlamaForCausalLM, transformers.LlamaConfig, TINY_LLAMA_GQA),
    "llama_tied": (transformers.LlamaForCausalLM, transformers.LlamaConfig, TINY_LLAMA_TIED),
    "llama_biases": (transformers.LlamaForCausalLM, transformers.LlamaConfig, TINY_LLAMA_BIASES),
    "qwen2": (transformers.Qwen2ForCausalLM, transformers.Qwen2Config, TINY_QWEN2),
    "gemma": (transformers.GemmaForCausalLM, transformers.GemmaConfig, TINY_GEMMA),
    "gemma2": (transformers.Gemma2ForCausalLM, transformers.Gemma2Config, TINY_GEMMA2),
}


TINY_GPTS = {
    "gpt2": (transformers.GPT2LMHeadModel, transformers.GPT2Config, TINY_GPT2),
    "openai_gpt": (transformers.OpenAIGPTLMHeadModel, transformers.OpenAIGPTConfig, TINY_GPT2),
}
TINY_DECODERS = {**TINY_MODELS, **TINY_GPTS}


def logits_options(name):
    """The b4k3 option that makes the LM head of the tiny decoder `name` give logits."""
    return {"final_activation": "linear"} if name in TINY_GPTS else {"with_lm": "linear"}


# Saving random Hugging Face models


def save_hf_model(model_class, config_class, config, directory, seed=0, perturb=0.1, **save_options):
    """Builds `model_class(config_class(**config))` with random weights, every 1-d weight (biases,
    norm scales) moved by noise of standard deviation `perturb` so that a weight loaded in the
    wrong place shows, saves it to `directory`; returns (directory, the model)."""
    torch.manual_seed(seed)
    model = model_class(config_class(**config)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(torch.randn_like(parameter) * perturb)
    model.save_pretrained(directory, **save_options)
    return pathlib.Path(directory), model


def save_llm(name, directory, seed=0, **save_options):
    """Saves the random tiny decoder `TINY_DECODERS[name]` (eager attention, 1-d weights moved by
    noise of 0.2) to `directory`; returns (directory, the Hugging Face model)."""
    model_class, config_class, config = TINY_DECODERS[name]
    config = {**config, "attn_implementation": "eager"}
    return save_hf_model(model_class, config_class, config, directory, seed, perturb=0.2, **save_options)


def saver(tmp_path_factory):
    """`save(name)`: (directory, Hugging Face model) of the tiny decoder `name`, saved the first
    time it is asked for (the `saved` fixture returns it)."""
    saved = {}

    def save(name):
        if name not in saved:
            saved[name] = save_llm(name, tmp_path_factory.mktemp(name))
        return saved[name]

    return save


def decoder_and_reference(name, tmp_path_factory):
    """(b4k3 decoder with a linear LM head, Hugging Face model) of the tiny decoder `name`, saved
    to a fresh temporary directory and loaded from it."""
    directory, reference = save_llm(name, tmp_path_factory.mktemp(name))
    options = logits_options(name)
    return build_transformer_model(checkpoint_path=directory, return_keras_model=False, **options), reference


def write_tf_checkpoint(arrays, prefix):
    """`{name: array}` written as a TF checkpoint at `prefix` (what Google's releases are)."""
    import tensorflow as tf  # in every test environment: b4k3-models' [tf-checkpoint] extra

    names = sorted(arrays)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(arrays[name]) for name in names],
    )
    return str(prefix)


# Batches


def padded_batch(vocab_size, pad_id=0, first_id=None, lengths=(11, 7, 3), seed=0):
    """Token ids `(len(lengths), max(lengths))` int32 that never use `pad_id` inside a row, padded with
    it at the end, the first token `first_id` when given; and the `(batch, len)` mask of real tokens."""
    rng = np.random.default_rng(seed)
    ids = np.full((len(lengths), max(lengths)), pad_id, dtype="int32")
    for row, length in enumerate(lengths):
        tokens = rng.integers(3, vocab_size, size=length)
        tokens[tokens == pad_id] = pad_id + 3
        if first_id is not None:
            tokens[0] = first_id
        ids[row, :length] = tokens
    return ids, ids != pad_id


def ragged_batch(vocab_size, lengths=(10, 7, 3), seed=0):
    """Token ids `(len(lengths), max(lengths))` int32 right-padded with 0, which is a real token
    too (it appears inside the first two rows), and the `(batch, len)` mask of real positions."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), max(lengths)), dtype="int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, vocab_size, size=length)
    ids[0, 2] = ids[1, 0] = 0
    mask = np.arange(ids.shape[1])[None] < np.asarray(lengths)[:, None]
    return ids, mask


# Running and comparing


def predict(model, inputs):
    """The model's outputs on `inputs` as NumPy arrays (a list when it has several)."""
    outputs = model(inputs, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(output) for output in outputs]
    return keras.ops.convert_to_numpy(outputs)


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


def assert_matches(actual, expected, mask=None, rtol=1e-5, atol=1e-4):
    """fp32 parity: within `rtol` relative / `atol` absolute, at the real tokens when `mask` is given."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if mask is not None:
        actual, expected = actual[mask], expected[mask]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def hf_logits(model, ids, mask=None):
    """Hugging Face's logits `(batch, len, vocab)` as NumPy, attending to the `mask`ed positions."""
    attention_mask = None if mask is None else torch.tensor(mask, dtype=torch.long)
    with torch.no_grad():
        outputs = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=attention_mask, use_cache=False)
    return outputs.logits.numpy()


def hf_greedy(model, prompt, max_new_tokens, end_token=None, **options):
    """Hugging Face's greedy continuation of one prompt (no padding needed): the new tokens only.
    Without `end_token` it never stops early; `options` go to `model.generate`
    (`repetition_penalty`, `bad_words_ids`, ...)."""
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=end_token,
            pad_token_id=end_token if end_token is not None else 0,
            **options,
        )
    return output[0, len(prompt) :].tolist()


def chi_square_critical(df, z=3.0902):
    """Wilson-Hilferty approximation of the chi-square quantile; z=3.0902 is the normal 0.999 quantile."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy set to `name` inside the block, float32 again after."""
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


# The drivers


def run_family_parity_test(directory, inputs, expected, mask=None, rtol=1e-5, atol=1e-4, **build_options):
    """The model b4k3 loads from the Hugging Face `directory` (`build_transformer_model` with
    `build_options`) gives `expected`, the reference's outputs on `inputs`, within `rtol` / `atol`
    at the `mask`ed positions. Returns the b4k3 transformer."""
    transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False, **build_options)
    assert_matches(predict(transformer.model, inputs), expected, mask, rtol, atol)
    return transformer


def decode_in_steps(step, cache, tokens, prompt_length, as_index=np.int32):
    """Outputs `(batch, len, vocab)` of `tokens`: the first `prompt_length` in one call at index 0,
    then one token per call at its position (`as_index(position)`, one for the batch)."""
    logits, cache = step(tokens[:, :prompt_length], cache, as_index(0))
    outputs = [to_numpy(logits)]
    for position in range(prompt_length, tokens.shape[1]):
        logits, cache = step(tokens[:, position : position + 1], cache, as_index(position))
        outputs.append(to_numpy(logits))
    return np.concatenate(outputs, axis=1)


def ragged_prompts(vocab_size, lowest_token=0):
    """Three prompts of lengths 6, 3 and 1 right-padded with 0, their lengths, and 4 further
    tokens per row (ids from `lowest_token`)."""
    lengths = np.array([6, 3, 1], dtype="int32")
    rng = np.random.default_rng(1)
    prompts = np.zeros((len(lengths), lengths.max()), dtype="int32")
    for row, length in enumerate(lengths):
        prompts[row, :length] = rng.integers(lowest_token, vocab_size, size=length)
    continuations = np.random.default_rng(2).integers(lowest_token, vocab_size, size=(len(lengths), 4))
    return prompts, lengths, continuations.astype("int32")


def decode_ragged(step, transformer, prompts, lengths, continuations, chunks, full_pass):
    """Outputs of right-padded `prompts` prefilled together at index 0, then of `continuations`
    fed in pieces of `chunks` tokens, each row from its own length (a `(batch,)` int32 index);
    checked row by row against `full_pass` of that row alone."""
    cache = transformer.build_cache(len(lengths), prompts.shape[1] + continuations.shape[1])
    logits, cache = step(prompts, cache, np.zeros(len(lengths), dtype="int32"))
    prefill = to_numpy(logits)
    decoded, done = [], 0
    for chunk in chunks:
        logits, cache = step(continuations[:, done : done + chunk], cache, lengths + done)
        decoded.append(to_numpy(logits))
        done += chunk
    decoded = np.concatenate(decoded, axis=1)

    for row, length in enumerate(lengths):
        sequence = np.concatenate([prompts[row, :length], continuations[row]])[None]
        expected = full_pass(sequence)[0]
        assert_matches(prefill[row, :length], expected[:length])
        assert_matches(decoded[row], expected[length:])


def run_decoding_protocol_test(transformer, tokens, full_pass=None, step=None, lowest_token=0, chunks=(1, 1, 1, 1)):
    """The decoding protocol gives the full pass's outputs (within 1e-5 / 1e-4):
    - `tokens` `(batch, len)`: the first 6 prefilled at index 0 into a cache longer than needed,
      then one token per call (a Python int index, then the same with a 0-d tensor index);
    - ragged prompts (`ragged_prompts`, ids from `lowest_token`), each continued from its own
      length in pieces of `chunks` tokens, against each row's full pass alone.
    `full_pass(tokens)` runs the whole sequences (default: the Keras model on the token ids);
    `step` replaces `call_with_cache` (e.g. a compiled version of it)."""
    full_pass = full_pass or (lambda sequences: predict(transformer.model, sequences))
    step = step or transformer.call_with_cache
    cache = transformer.build_cache(len(tokens), tokens.shape[1] + 2)  # unused positions stay masked
    assert len(cache) == transformer.num_hidden_layers
    expected = full_pass(tokens)
    assert_matches(decode_in_steps(step, cache, tokens, 6), expected)
    as_tensor = lambda position: keras.ops.convert_to_tensor(position, "int32")  # noqa: E731
    assert_matches(decode_in_steps(step, cache, tokens, 6, as_tensor), expected)
    prompts = ragged_prompts(transformer.vocab_size, lowest_token)
    decode_ragged(step, transformer, *prompts, chunks=list(chunks), full_pass=full_pass)


NEZHA_REFERENCE = pathlib.Path(__file__).with_name("nezha_reference.npz")


def nezha_reference():
    """transformers 4's NEZHA outputs and weights (see test_nezha_matches_reference.py): a dict of
    the arrays, its `config` parsed."""
    with np.load(NEZHA_REFERENCE) as arrays:
        reference = {key: arrays[key] for key in arrays.files}
    reference["config"] = json.loads(str(reference["config"]))
    return reference


def nezha_weights(reference):
    """The reference's weights under Hugging Face's names."""
    return {key.removeprefix("weight/"): value for key, value in reference.items() if key.startswith("weight/")}


def save_nezha_directory(reference, directory):
    """The reference's NEZHA as a Hugging Face directory (config.json + model.safetensors)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(reference["config"]))
    safetensors.numpy.save_file(nezha_weights(reference), str(directory / "model.safetensors"))
    return directory


# Hugging Face's BERT names -> Google's, for `google_arrays` (the tied MLM decoder is not stored:
# skip `cls.predictions.decoder`).
BERT_GOOGLE_RENAMES = [
    (r"layer\.(\d+)", r"layer_\1"),
    (r"^cls\.seq_relationship\.weight", "cls.seq_relationship.output_weights"),
    (r"^cls\.seq_relationship\.bias", "cls.seq_relationship.output_bias"),
    (r"^cls\.predictions\.bias", "cls.predictions.output_bias"),
]


def google_arrays(weights, renames, skip=()):
    """A Hugging Face state dict (`{key: tensor or array}`) under Google TF names and layouts, what a
    family's original TF checkpoint holds. Each key gets the `(pattern, replacement)` regular-expression `renames`
    in order, then its dots become slashes and its leaf Google's: a LayerNorm's `weight` / `bias`
    its `gamma` / `beta`, an embedding table (`*_embeddings`) no leaf, any other `weight` a
    `kernel`, transposed to `(in, out)`. Keys starting with one of `skip` are left out (tied
    copies, which Google's checkpoints do not store)."""
    arrays = {}
    for key, tensor in weights.items():
        if key.startswith(tuple(skip)):
            continue
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        scope, leaf = key.replace(".", "/").rsplit("/", 1)
        array = np.asarray(tensor)
        if "LayerNorm" in scope.rsplit("/", 1)[-1]:
            name = f"{scope}/{'gamma' if leaf == 'weight' else 'beta'}"
        elif scope.endswith("_embeddings"):
            name = scope
        elif leaf == "weight":
            name, array = f"{scope}/kernel", array.T
        else:
            name = f"{scope}/{leaf}"
        arrays[name] = np.ascontiguousarray(array)
    return arrays


def save_google_checkpoint(directory, config=TINY_BERT):
    """A random BERT of the Hugging Face `config` (with its pretraining heads) as a Google TF
    checkpoint `bert_model.ckpt` with its bert4keras `bert_config.json`, in `directory`."""
    from test_tf_checkpoint import GOOGLE_CONFIG_KEYS

    _, reference = save_hf_model(transformers.BertForPreTraining, transformers.BertConfig, config, directory / "hf")
    arrays = google_arrays(reference.state_dict(), BERT_GOOGLE_RENAMES, skip=["cls.predictions.decoder"])
    write_tf_checkpoint(arrays, directory / "bert_model.ckpt")
    (directory / "bert_config.json").write_text(json.dumps({key: config[key] for key in GOOGLE_CONFIG_KEYS}))
