"""Every script under examples/ runs, as a user would run it, on the backend of the test
environment and prints what it promises; encode_sentences' embeddings are sentence-transformers'
(Hugging Face's BertModel, mean pooling over the attention mask, unit length); chat's streamed
answer is transformers' greedy answer from the same GGUF file; unilm_seq2seq's targets are the
greedy tokens of an uncached loop over the same seeded model."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from workspace import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"

# Generous: a cold start imports the backend and loads the pretrained weights while the other
# xdist workers run their own tests.
TIMEOUT_S = 300

# The built-in sentences of encode_sentences, by topic: each one's nearest neighbour is its partner.
PARTNERS = {
    "A man is eating food.": "A man is eating a piece of bread.",
    "The cat is sleeping on the sofa.": "A kitten naps on the couch.",
    "The central bank raised interest rates again.": "Mortgage costs climbed after the rate hike.",
}
PARTNERS |= {partner: sentence for sentence, partner in PARTNERS.items()}


def run_example(script, *args):
    """Runs examples/<script> with this interpreter and environment (so its KERAS_BACKEND); returns stdout."""
    command = [sys.executable, str(EXAMPLES / script), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO_ROOT)
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def printed_backend(output):
    return re.search(r"^Keras backend: (\w+)$", output, re.MULTILINE).group(1)


def printed_similarities(output):
    """The printed cosine similarity table, as an array."""
    rows = re.findall(r"^ *\d+((?: +-?\d\.\d{3})+)$", output, re.MULTILINE)
    return np.array([[float(value) for value in row.split()] for row in rows])


def printed_nearest_neighbours(output):
    """`{sentence: (its nearest neighbour, their similarity)}` from the nearest-neighbour lines."""
    lines = re.findall(r'^ *\d+ -> \d+ +(-?\d\.\d{3}) +"(.*)" -> "(.*)"$', output, re.MULTILINE)
    return {sentence: (neighbour, float(score)) for score, sentence, neighbour in lines}


def check_encode_sentences(output):
    assert printed_backend(output) == os.environ.get("KERAS_BACKEND", "jax")
    nearest = printed_nearest_neighbours(output)
    assert {sentence: neighbour for sentence, (neighbour, _) in nearest.items()} == PARTNERS, output
    similarities = printed_similarities(output)
    assert similarities.shape == (len(PARTNERS), len(PARTNERS)), output
    np.testing.assert_allclose(np.diag(similarities), 1.0, atol=1e-3)
    np.testing.assert_array_equal(similarities, similarities.T)


CHAT_TOKENS = 16


def check_chat(output):
    """The streamed answer to the built-in prompt is transformers' greedy answer (same GGUF file)."""
    import torch
    from smollm2 import smollm2_gguf_path
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert printed_backend(output) == os.environ.get("KERAS_BACKEND", "jax")
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    prompt = re.search(r"^User: (.*)$", output, re.MULTILINE).group(1)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)["input_ids"]
    with torch.no_grad():
        answer = model.generate(torch.tensor([ids]), max_new_tokens=CHAT_TOKENS, do_sample=False)[0, len(ids) :]
    expected = tokenizer.decode(answer, skip_special_tokens=True)
    assert output.split("Assistant: ", 1)[1].rstrip("\n") == expected, output


def check_unilm_seq2seq(output):
    """The targets printed for the built-in sources are the greedy tokens of a plain loop that
    re-runs the example's (seeded, random) UniLM BERT without a cache on the growing sequence,
    the generated tokens in segment 1; build_cache_model's predict agrees."""
    assert printed_backend(output) == os.environ.get("KERAS_BACKEND", "tensorflow")
    example = import_example("unilm_seq2seq")
    vocabulary = example.character_vocabulary()
    tokenizer = example.Tokenizer(vocabulary)
    transformer = example.random_unilm(len(vocabulary))
    end_token = vocabulary["[SEP]"]
    expected = []
    for source in example.encode_sources(tokenizer, example.SOURCES):
        tokens = list(source)
        for _ in range(example.MAX_NEW_TOKENS):
            segments = (np.arange(len(tokens)) >= len(source)).astype("int32")[None]
            logits = transformer.model([np.array([tokens]), segments], training=False)
            tokens.append(int(np.argmax(keras.ops.convert_to_numpy(logits)[0, -1])))
            if tokens[-1] == end_token:
                break
        expected.append(tokens[len(source) :])
    lines = re.findall(r"^target ids: (\[.*\])  \(build_cache_model agrees: True\)$", output, re.MULTILINE)
    printed = [json.loads(ids) for ids in lines]
    assert printed == expected, output


# What each example must print, by script name: every example needs one. The arguments it runs
# with, where it takes some (a short answer keeps the chat example quick).
def check_downstream_decoder(output):
    assert printed_backend(output) == os.environ.get("KERAS_BACKEND", "jax")
    assert "greedy equals the plain loop: True" in output, output
    assert "equals the plain loop with them banned: True" in output, output
    assert len(re.findall(r"^  \[", output, re.MULTILINE)) > 1, f"no streamed steps:\n{output}"


def check_lora_classifier(output):
    """Trained on the tiny set, the classifier gets the two test sentences right, and the reloaded
    adapter (a file under 1 MiB) and the merged model predict what the fine-tuned model did."""
    assert printed_backend(output) == os.environ.get("KERAS_BACKEND", "jax")
    assert float(re.search(r"^training accuracy after \d+ epochs: (\d\.\d+)$", output, re.MULTILINE).group(1)) == 1.0
    assert float(re.search(r"^adapter file: (\d+) KiB", output, re.MULTILINE).group(1)) < 1024, output
    assert re.findall(r"^  (\w+) +\d\.\d{3}  ", output, re.MULTILINE) == ["food", "finance"], output
    assert "reloaded adapter predicts the same: True" in output, output
    assert "merged into the base weights, same predictions: True" in output, output


OUTPUT_CHECKS = {
    "lora_classifier.py": check_lora_classifier,
    "encode_sentences.py": check_encode_sentences,
    "chat.py": check_chat,
    "downstream_decoder.py": check_downstream_decoder,
    "unilm_seq2seq.py": check_unilm_seq2seq,
}
ARGUMENTS = {"chat.py": ["--max-new-tokens", str(CHAT_TOKENS)]}


@pytest.mark.parametrize("script", sorted(path.name for path in EXAMPLES.glob("*.py")))
def test_example_runs_and_prints_what_it_promises(script, minilm_dir):
    assert script in OUTPUT_CHECKS, f"examples/{script} has no check of its output: add one to OUTPUT_CHECKS"
    OUTPUT_CHECKS[script](run_example(script, *ARGUMENTS.get(script, [])))


def test_encode_sentences_compares_the_sentences_given_on_the_command_line(minilm_dir):
    first, second = "How do I bake bread at home?", "What is a good recipe for homemade bread?"
    output = run_example("encode_sentences.py", first, second)
    similarity = printed_similarities(output)
    assert similarity.shape == (2, 2), output
    # Two questions about baking bread: sentence-transformers scores them 0.679.
    assert similarity[0, 1] == similarity[1, 0] == pytest.approx(0.679, abs=2e-3)
    assert printed_nearest_neighbours(output) == {first: (second, similarity[0, 1]), second: (first, similarity[0, 1])}


def import_example(name):
    """examples/<name>.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def encode_sentences():
    """examples/encode_sentences.py, imported as a module."""
    return import_example("encode_sentences")


def transformers_embeddings(model_dir, sentences):
    """sentence-transformers' recipe on Hugging Face's BertModel: mean over the attention mask, unit length."""
    import torch
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir).eval()
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        token_vectors = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    mean = (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


def test_encode_sentences_embeddings_match_transformers_mean_pooling(encode_sentences, minilm_dir):
    # Ragged lengths (padding must not count), upper case and accents (the vocab is uncased), and
    # one sentence past the 256-token limit (both cut it there).
    sentences = [
        "Hi!",
        "The Café on MAIN Street serves crème brûlée, naïvely priced at $4.50.",
        "A man is eating a piece of bread.",
        " ".join(["tokens"] * 300),
    ]
    embeddings = encode_sentences.encode(sentences)
    assert embeddings.shape == (len(sentences), 384)
    np.testing.assert_allclose(embeddings, transformers_embeddings(minilm_dir, sentences), rtol=0, atol=1e-5)
