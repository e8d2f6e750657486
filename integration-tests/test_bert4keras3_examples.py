"""The bert4keras3 programs ported by changing their imports (examples/bert4keras3/) run as a
user runs them, on the backend of the test environment, and show what they promise: the loss
falls, the beam search with topk=1 is the model's argmax loop, GlobalPointer finds the entities.

(test_examples.py runs the scripts directly under examples/; these live in a subfolder.)
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import sentencepiece
import torch
import transformers
from bert4keras3_files import write_bert4keras3_file
from family_checks import TINY_BERT, TINY_GEMMA, save_google_checkpoint, save_llm

from workspace import REPO_ROOT

FOLDER = REPO_ROOT / "examples" / "bert4keras3"
TIMEOUT_S = 600  # CPU training, on two shared cores in CI
# Text for the tiny sentencepiece model of the Gemma example: its pieces cover "I want to say".
GEMMA_CORPUS = [
    "I want to say something about the weather today.",
    "We want to say hello to all of you.",
    "They say the river is wide and the road is long.",
    "I want a cup of tea and a slice of bread.",
    "Quick brown foxes jump over lazy dogs in the garden.",
    "Maybe the kitchen clock is broken, but the oven works fine.",
    "Seven zebras quietly visited every museum in Vienna.",
    "Join my excellent journey through hexagonal galaxies!",
] * 20


def run(script, *args):
    result = subprocess.run(
        [sys.executable, str(FOLDER / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert re.search(r"^Keras backend: (\w+)$", result.stdout, re.M).group(1) == os.environ.get("KERAS_BACKEND", "jax")
    return result.stdout


def losses(output):
    first, last = re.search(r"^loss: first epoch ([\d.]+), last epoch ([\d.]+)$", output, re.M).groups()
    return float(first), float(last)


def test_every_ported_example_has_a_test():
    tested = {
        "seq2seq_reverse_unilm.py",
        "ner_global_pointer.py",
        "extract_features.py",
        "gibbs_sampling_via_mlm.py",
        "gemma_generate.py",
    }
    assert {path.name for path in FOLDER.glob("*.py")} == tested


def test_ported_examples_change_only_the_imports():
    """Nothing of bert4keras3 is imported; each names the imports it replaced."""
    for path in FOLDER.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        code = source.split('"""', 2)[2]
        assert "bert4keras3" not in code, path.name
        assert "The imports were:" in source, path.name


def test_unilm_seq2seq_trains_and_decodes_with_autoregressive_decoder():
    output = run("seq2seq_reverse_unilm.py")
    first, last = losses(output)
    assert last < 0.8 * first, output
    assert "beam search with topk=1 equals the argmax loop: True" in output, output
    beams = re.findall(r"^source \[([\d, ]*)\] -> beam search \[([\d, ]*)\]$", output, re.M)
    assert len(beams) == 8, output
    samples = re.search(r"^random_sample \(n=3, topk=3\) of .*: (\[.*\])$", output, re.M)
    assert samples, output
    assert samples.group(1).count("[") == 4, output


def test_global_pointer_ner_learns_the_synthetic_entities():
    output = run("ner_global_pointer.py")
    first, last = losses(output)
    assert last < 0.6 * first, output
    f1 = float(re.search(r"^valid: f1 ([\d.]+),", output, re.M).group(1))
    assert f1 > 0.5, output


def test_extract_features_prints_hugging_faces_hidden_states(minilm_dir):
    """The printed features of "language model" (the first and last three of each token's 384) are
    the pretrained MiniLM's last hidden states in Hugging Face's BertModel, to the printed digits."""
    output = run("extract_features.py", minilm_dir)
    printed = output.split("===== predicting =====", 1)[1]
    values = np.array(re.findall(r"-?\d+\.\d+", printed.split("]]]", 1)[0]), dtype="float64").reshape(4, 6)
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    ids = tokenizer("language model", return_tensors="pt")
    assert ids["input_ids"].shape == (1, 4)
    with torch.no_grad():
        hidden = transformers.BertModel.from_pretrained(minilm_dir)(**ids).last_hidden_state[0].numpy()
    np.testing.assert_allclose(values, hidden[:, [0, 1, 2, -3, -2, -1]], rtol=0, atol=2e-6)


def test_gibbs_sampling_draws_sentences_from_the_mlm(minilm_dir, tmp_path):
    """A Google BERT checkpoint with its MLM head (random, MiniLM's vocabulary): the sampler's
    `np.random.choice(p=probas)` takes the MLM's softmax as it is, and the sampled sentences keep
    the given sentence's length."""
    config = {**TINY_BERT, "vocab_size": 30522, "max_position_embeddings": 64}
    save_google_checkpoint(tmp_path, config)
    shutil.copy(pathlib.Path(minilm_dir) / "vocab.txt", tmp_path / "vocab.txt")
    output = run("gibbs_sampling_via_mlm.py", tmp_path)
    sentences = output.split("部分随机采样结果：\n", 1)[1].splitlines()
    assert len(sentences) == 10, output
    tokenizer = transformers.BertTokenizer(str(tmp_path / "vocab.txt"))
    given = tokenizer.tokenize("science and technology are the primary productive forces.")
    assert all(len(tokenizer.tokenize(sentence)) <= len(given) + 2 for sentence in sentences), sentences
    assert len(set(sentences)) > 1, sentences


def test_gemma_generates_from_a_bert4keras3_weights_file(tmp_path):
    """bert4keras3's Gemma files (`model.weights.h5` in its layout, `config.json`,
    `tokenizer.model`), written here from a random tiny Hugging Face Gemma whose vocabulary is a
    sentencepiece model trained on the spot: both rows keep the prompt and generate after it."""
    spm_prefix = tmp_path / "tokenizer"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(GEMMA_CORPUS),
        model_prefix=str(spm_prefix),
        vocab_size=TINY_GEMMA["vocab_size"],
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
    )
    _, reference = save_llm("gemma", tmp_path / "hf")
    (tmp_path / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    write_bert4keras3_file(reference, "gemma", tmp_path / "model.weights.h5")
    output = run("gemma_generate.py", f"{tmp_path}/")
    rows = output.strip().splitlines()[-2:]
    assert all(row.startswith("I want to say") and len(row) > len("I want to say") for row in rows), output
