"""RoFormer loaded from Hugging Face directories (`RoFormerForMaskedLM` with factorized embeddings,
`RoFormerModel` without them) and from a Google-TF checkpoint under bert4keras' names gives
Hugging Face's outputs on a padded batch with two segments, within 1e-5 relative / 1e-4 absolute
(fp32); weights drawn at std 0.2, norm gains and biases moved by noise of 0.2. A causal RoFormer
decodes through the KV cache as its full pass computes; what RoFormer cannot honour is refused."""

import json

import numpy as np
import pytest
import torch
import transformers
from family_checks import (
    BERT_SIZES,
    TINY_ROFORMER,
    assert_matches,
    padded_batch,
    predict,
    run_decoding_protocol_test,
    run_family_parity_test,
    save_hf_model,
    write_tf_checkpoint,
)
from test_tf_checkpoint import google_arrays

from b4k3_models import RoFormer, build_transformer_model

SIZES = {name: TINY_ROFORMER[name] for name in BERT_SIZES}
GOOGLE_CONFIG = {**SIZES, "hidden_act": "gelu", "type_vocab_size": 2, "embedding_size": TINY_ROFORMER["embedding_size"]}


@pytest.fixture(scope="module")
def roformer_mlm(tmp_path_factory):
    """`RoFormerForMaskedLM` (keys under `roformer.` and `cls.`, `embeddings_project`)."""
    directory = tmp_path_factory.mktemp("roformer_mlm")
    return save_hf_model(
        transformers.RoFormerForMaskedLM, transformers.RoFormerConfig, TINY_ROFORMER, directory, perturb=0.2
    )


@pytest.fixture(scope="module")
def batch():
    ids, mask = padded_batch(TINY_ROFORMER["vocab_size"])
    segments = np.zeros_like(ids)
    segments[:, 4:] = 1
    return ids, mask, segments


def hf_outputs(model, ids, mask, segments):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
            output_hidden_states=True,
        )


def test_roformer_for_masked_lm_logits_and_sequence_output(roformer_mlm, batch):
    directory, reference = roformer_mlm
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments)

    transformer = run_family_parity_test(directory, [ids, segments], expected.logits.numpy(), mask, with_mlm="linear")
    assert isinstance(transformer, RoFormer)
    assert transformer.embedding_size == 24
    encoder = build_transformer_model(checkpoint_path=directory)  # the MLM head's keys are known, not unused
    assert_matches(predict(encoder, [ids, segments]), expected.hidden_states[-1].numpy(), mask)


def test_roformer_model_without_prefix(tmp_path, batch):
    config = {**TINY_ROFORMER, "embedding_size": TINY_ROFORMER["hidden_size"]}
    directory, reference = save_hf_model(
        transformers.RoFormerModel, transformers.RoFormerConfig, config, tmp_path, seed=1, perturb=0.2
    )
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments).last_hidden_state.numpy()
    run_family_parity_test(directory, [ids, segments], expected, mask)


def bert4keras_arrays(hf_model):
    """The Hugging Face RoFormer's weights under the names of ZhuiyiTechnology's TF releases
    (bert4keras' map: Google BERT's names under `bert/`, no position table)."""
    arrays = {}
    for name, array in google_arrays(hf_model).items():
        if "embed_positions" in name:
            continue  # Hugging Face's saved sinusoid table; the TF releases have none
        name = name.replace("roformer/embeddings_project/", "bert/encoder/embedding_hidden_mapping_in/")
        arrays[name.replace("roformer/", "bert/", 1)] = array
    return arrays


def test_google_checkpoint_with_bert4keras_names(roformer_mlm, batch, tmp_path):
    _, reference = roformer_mlm
    ids, mask, segments = batch
    arrays = bert4keras_arrays(reference)
    assert "bert/encoder/layer_1/attention/self/query/kernel" in arrays
    checkpoint = write_tf_checkpoint(arrays, tmp_path / "bert_model.ckpt")
    (tmp_path / "bert_config.json").write_text(json.dumps(GOOGLE_CONFIG))

    model = build_transformer_model(tmp_path / "bert_config.json", checkpoint, model="roformer", with_mlm="linear")
    assert_matches(predict(model, [ids, segments]), hf_outputs(reference, ids, mask, segments).logits.numpy(), mask)


def test_causal_roformer_decodes_with_rotary_positions_from_the_cache_index(roformer_mlm):
    directory, _ = roformer_mlm
    transformer = build_transformer_model(
        checkpoint_path=directory, application="lm", with_mlm="linear", return_keras_model=False
    )
    assert transformer.max_positions is None
    tokens = np.random.default_rng(0).integers(1, TINY_ROFORMER["vocab_size"], size=(2, 10)).astype("int32")

    def full_pass(sequences):
        return predict(transformer.model, [sequences, np.zeros_like(sequences)])

    run_decoding_protocol_test(transformer, tokens, full_pass, lowest_token=1)


def test_rotary_values_are_refused(roformer_mlm, tmp_path):
    directory, _ = roformer_mlm
    config = json.loads((directory / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "rotary_value": True}))
    with pytest.raises(ValueError, match="rotary_value=True"):
        build_transformer_model(config_path=tmp_path / "config.json")


@pytest.mark.parametrize("option", ["hierarchical_position", "custom_position_ids"])
def test_learned_position_options_are_refused(option):
    with pytest.raises(TypeError, match=option):
        build_transformer_model(**SIZES, model="roformer", **{option: True})
