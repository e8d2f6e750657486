"""A Google-format TF checkpoint (Google BERT's variable names and layouts, written here with
TensorFlow from a tiny HF BERT's weights) loads through `checkpoint_path` and gives HF's outputs."""

import json

import numpy as np
import pytest
import torch
from family_checks import (
    BERT_GOOGLE_RENAMES,
    TINY_BERT,
    assert_matches,
    google_arrays,
    padded_batch,
    predict,
    write_tf_checkpoint,
)

from b4k3_models import CheckpointMismatchError, build_transformer_model

GOOGLE_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "max_position_embeddings",
    "type_vocab_size",
)


@pytest.fixture(scope="module")
def google_checkpoint(bert_pretraining, tmp_path_factory):
    """`bert_model.ckpt` + `bert_config.json` as Google released them, with training state too."""
    _, reference = bert_pretraining
    directory = tmp_path_factory.mktemp("google_bert")
    arrays = google_arrays(reference.state_dict(), BERT_GOOGLE_RENAMES, skip=["cls.predictions.decoder"])
    arrays["global_step"] = np.array(1000, dtype="int64")
    arrays["bert/embeddings/word_embeddings/adam_m"] = np.zeros_like(arrays["bert/embeddings/word_embeddings"])
    write_tf_checkpoint(arrays, directory / "bert_model.ckpt")
    config = {key: TINY_BERT[key] for key in GOOGLE_CONFIG_KEYS}
    (directory / "bert_config.json").write_text(json.dumps(config))
    return directory, reference


def test_google_checkpoint_gives_hf_outputs(google_checkpoint):
    directory, reference = google_checkpoint
    ids, mask = padded_batch(TINY_BERT["vocab_size"])
    segments = (np.arange(ids.shape[1]) >= 5).astype("int32")[None].repeat(len(ids), 0)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
            output_hidden_states=True,
        )

    model = build_transformer_model(
        config_path=directory / "bert_config.json",
        checkpoint_path=directory / "bert_model.ckpt",
        with_nsp="linear",
        with_mlm="linear",
    )
    nsp_logits, mlm_logits = predict(model, [ids, segments])
    assert_matches(nsp_logits, expected.seq_relationship_logits.numpy())
    assert_matches(mlm_logits, expected.prediction_logits.numpy(), mask)

    encoder = build_transformer_model(
        config_path=directory / "bert_config.json", checkpoint_path=str(directory / "bert_model.ckpt")
    )
    assert_matches(predict(encoder, [ids, segments]), expected.hidden_states[-1].numpy(), mask)


def test_google_checkpoint_with_more_layers_than_the_config_is_refused(google_checkpoint):
    directory, _ = google_checkpoint
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(
            config_path=directory / "bert_config.json",
            checkpoint_path=directory / "bert_model.ckpt",
            num_hidden_layers=1,
        )
    assert "bert/encoder/layer_1/attention/self/query/kernel" in str(error.value)
    assert "global_step" not in str(error.value)
    assert "adam_m" not in str(error.value)
