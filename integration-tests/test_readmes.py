"""Every Python code block of the READMEs runs as written, on the Keras backend of the test run.

The blocks of one README run in order in one fresh process (a reader runs them one after the
other), in a folder holding what they name: tiny random models saved under the checkpoint names
they use (Hugging Face directories, a Google TF checkpoint, `.weights.h5`, an RWKV `.pth`), a
WordPiece vocab, two SentencePiece models and the real SmolLM2-135M GGUF file (linked). The bash blocks (installs) are
checked by the packaging check and `test_examples.py`.
"""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
import transformers
from family_checks import TINY_BERT, save_google_checkpoint, save_hf_model
from rwkv_checks import save_pth, tiny_state_dict
from smollm2 import smollm2_gguf_path

from workspace import REPO_ROOT

READMES = sorted(path.relative_to(REPO_ROOT) for path in REPO_ROOT.glob("**/README.md") if ".hatch" not in path.parts)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
TINY_DECODER = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 32,
    "max_position_embeddings": 128,
}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "how", "are", "you", "!", "?", "h", "##é"]
VOCAB += ["##l", "##lo", "##llo"]
CORPUS = ["hello world, how are you?", "translate English to German: the house is wonderful."] * 50


def python_blocks(readme):
    return PYTHON_BLOCK.findall((REPO_ROOT / readme).read_text(encoding="utf-8"))


def save_decoder(model_class, config_class, directory, vocab_size):
    torch.manual_seed(0)
    model_class(config_class(**TINY_DECODER, vocab_size=vocab_size)).save_pretrained(directory)


def save_sentencepiece(prefix, **pieces):
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_prefix=str(prefix), vocab_size=30, model_type="unigram", **pieces
    )


def save_t5(directory, spiece):
    """A tiny gated-GELU T5 with the 30-piece SentencePiece model as its `spiece.model`."""
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=30, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, feed_forward_proj="gated-gelu"
    )
    transformers.T5ForConditionalGeneration(config).save_pretrained(directory)
    shutil.copy(spiece, directory / "spiece.model")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The files the READMEs name, tiny and random."""
    folder = tmp_path_factory.mktemp("readmes")
    save_decoder(transformers.LlamaForCausalLM, transformers.LlamaConfig, folder / "Llama-3.2-1B", 128_256)
    save_decoder(transformers.Qwen2ForCausalLM, transformers.Qwen2Config, folder / "Qwen2-0.5B", 10_000)
    save_hf_model(transformers.BertModel, transformers.BertConfig, TINY_BERT, folder / "all-MiniLM-L6-v2")
    (folder / "chinese_L-12_H-768_A-12").mkdir()
    save_google_checkpoint(folder / "chinese_L-12_H-768_A-12")

    from b4k3_models import build_transformer_model

    (folder / "bert_config.json").write_text(json.dumps(TINY_BERT))
    build_transformer_model(config_path=folder / "bert_config.json").save_weights(folder / "model.weights.h5")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    save_sentencepiece(folder / "spiece")
    save_sentencepiece(folder / "tokenizer", bos_piece="<bos>", eos_piece="<eos>")
    save_t5(folder / "flan-t5-small", folder / "spiece.model")
    save_pth(tiny_state_dict(), folder / "RWKV-x060-World-1B6-v2.1-20240328-ctx4096.pth")
    gguf = smollm2_gguf_path()
    (folder / gguf.name).symlink_to(gguf)
    return folder


def test_the_readmes_have_python_blocks():
    assert sum(len(python_blocks(readme)) for readme in READMES) >= 6


@pytest.mark.parametrize("readme", [readme for readme in READMES if python_blocks(readme)], ids=str)
def test_python_blocks_run_as_written(readme, workdir):
    code = "\n".join(python_blocks(readme))
    result = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{readme}:\n{result.stderr[-4000:]}"
