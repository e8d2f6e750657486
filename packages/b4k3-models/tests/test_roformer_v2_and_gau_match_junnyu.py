"""RoFormerV2 and GAU-alpha give the outputs of their references, JunnYu's PyTorch ports
(`roformer==0.4.3` `RoFormerForMaskedLM(use_bias=False, norm_type='rms_norm')` and
`gau-alpha==0.0.3` `GAUAlphaForMaskedLM`, on transformers 4.47.1), stored as golden fixtures by
`make_junnyu_fixtures.py`: tiny random weights at std 0.2 under the ports' names, and the ports'
last hidden states and MLM logits on a ragged batch (GAU-alpha's rows hold >= 16 real tokens, where
bert4keras' floor of `softmax_plus` and the port agree). Compared at the real tokens within 1e-5
relative / 1e-4 absolute (fp32), loaded as a Hugging Face directory and as a Google-TF checkpoint
under bert4keras' names. A RoFormerV2 checkpoint is refused by `model='roformer'`, naming what
it lacks; RoFormerV2 decodes with a KV cache and GAU-alpha says why it cannot."""

import json
import pathlib
import re

import numpy as np
import pytest
from family_checks import assert_matches, predict, run_decoding_protocol_test, write_tf_checkpoint
from safetensors.numpy import load_file
from test_tf_checkpoint import google_name

from b4k3_models import CheckpointMismatchError, GAU_alpha, RoFormerV2, build_transformer_model

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
FAMILIES = {"roformer_v2": RoFormerV2, "gau_alpha": GAU_alpha}


def fixture(name):
    """(directory, the stored batch and outputs) of a golden fixture."""
    return FIXTURES / name, dict(np.load(FIXTURES / name / "outputs.npz"))


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize(("with_mlm", "output"), [(False, "hidden_states"), ("linear", "logits")])
def test_hugging_face_directory_gives_the_ports_outputs(name, with_mlm, output):
    directory, stored = fixture(name)
    transformer = build_transformer_model(checkpoint_path=directory, with_mlm=with_mlm, return_keras_model=False)
    assert type(transformer) is FAMILIES[name]  # chosen from the config: JunnYu's RoFormerV2 says 'roformer'
    actual = predict(transformer.model, [stored["token_ids"], stored["segment_ids"]])
    assert_matches(actual, stored[output], stored["mask"])


def roformer_v2_google_name(key):
    """JunnYu's RoFormerV2 name -> bert4keras' (`roformer.` -> `bert/`, Google BERT's layout)."""
    return google_name(key).replace("roformer/", "bert/", 1)


def gau_alpha_google_name(key):
    """JunnYu's GAU-alpha name -> bert4keras' (`bert/embeddings/...`, `GAU_alpha/encoder/layer_%d/gau/...`)."""
    name = re.sub(r"layer\.(\d+)", r"layer_\1", key).replace(".", "/")
    name = name.replace("gau_alpha/embeddings/", "bert/embeddings/").replace("gau_alpha/", "GAU_alpha/", 1)
    name = re.sub(r"_embeddings/weight$", "_embeddings", name)
    return re.sub(r"scaleoffset/weight$", "scaleoffset/gamma", name).replace("dense/weight", "dense/kernel")


GOOGLE_NAMES = {"roformer_v2": roformer_v2_google_name, "gau_alpha": gau_alpha_google_name}


def bert4keras_checkpoint(name, directory):
    """The fixture's weights as ZhuiyiTechnology's TF release names them, with a bert4keras config."""
    arrays = {}
    for key, array in load_file(pathlib.Path(FIXTURES / name / "model.safetensors")).items():
        if "embed_positions" in key or key.startswith("cls."):
            continue  # Hugging Face's sinusoid table and the tied MLM matrix: not in the TF releases
        google = GOOGLE_NAMES[name](key)
        arrays[google] = np.ascontiguousarray(array.T if google.endswith("/kernel") else array)
    hf_config = json.loads((FIXTURES / name / "config.json").read_text())
    config = {key: hf_config[key] for key in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size")}
    config.update(hidden_act=hf_config["hidden_act"], type_vocab_size=2)
    config.update(num_attention_heads=hf_config.get("num_attention_heads", 1))
    if "attention_key_size" in hf_config:
        config["attention_key_size"] = hf_config["attention_key_size"]
    (directory / "bert_config.json").write_text(json.dumps(config))
    return write_tf_checkpoint(arrays, directory / "bert_model.ckpt"), arrays


@pytest.mark.parametrize(("name", "model"), [("roformer_v2", "roformer_v2"), ("gau_alpha", "gau")])
def test_google_checkpoint_with_bert4keras_names(name, model, tmp_path):
    _, stored = fixture(name)
    checkpoint, arrays = bert4keras_checkpoint(name, tmp_path)
    assert {"bert/embeddings/word_embeddings", "bert/embeddings/token_type_embeddings"} <= set(arrays)
    mlm = build_transformer_model(tmp_path / "bert_config.json", checkpoint, model=model, with_mlm="linear")
    assert_matches(predict(mlm, [stored["token_ids"], stored["segment_ids"]]), stored["logits"], stored["mask"])


def test_roformer_v2_checkpoint_given_to_roformer_names_the_missing_biases_and_gains(tmp_path):
    """What Hugging Face's RoFormer loads 'without error' (and predicts garbage with) is refused."""
    checkpoint, _ = bert4keras_checkpoint("roformer_v2", tmp_path)
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(tmp_path / "bert_config.json", checkpoint, model="roformer")
    message = str(caught.value)
    for missing in (
        "Transformer-0-MultiHeadSelfAttention/q_dense/bias",
        "Transformer-1-FeedForward/o_dense/bias",
        "Embedding-Norm/gamma",
        "Transformer-0-MultiHeadSelfAttention-Norm/beta",
    ):
        assert missing in message


def test_causal_roformer_v2_decodes_with_a_kv_cache():
    directory, stored = fixture("roformer_v2")
    transformer = build_transformer_model(
        checkpoint_path=directory, application="lm", with_mlm="linear", return_keras_model=False
    )
    tokens = stored["token_ids"][:2, :10].copy()
    tokens[tokens == 0] = 1

    def full_pass(sequences):
        return predict(transformer.model, [sequences, np.zeros_like(sequences)])

    run_decoding_protocol_test(transformer, tokens, full_pass, lowest_token=1)


def test_gau_alpha_says_why_it_cannot_decode():
    directory, _ = fixture("gau_alpha")
    transformer = build_transformer_model(checkpoint_path=directory, application="lm", return_keras_model=False)
    with pytest.raises(TypeError, match="softmax_plus"):
        transformer.build_cache(1, 8)


@pytest.mark.parametrize("head", ["with_pool", "with_nsp"])
def test_roformer_v2_refuses_heads_it_does_not_have(head):
    directory, _ = fixture("roformer_v2")
    with pytest.raises(TypeError, match=head):
        build_transformer_model(checkpoint_path=directory, **{head: True})
