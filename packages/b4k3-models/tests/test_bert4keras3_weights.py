"""Gemma and Gemma2 `.weights.h5` files as bert4keras3 wrote them load exactly: the same layout as
b4k3's, but its attention projections are `query_dense`, `key_dense`, `value_dense`,
`output_dense` (b4k3: `q_dense`...) and Gemma2's attention was its own class (`gemma2_attention`).
The files are written here from random Hugging Face models in bert4keras3's layout; a file that
does not fit still names every missing and unused array.

Reference: the Hugging Face model the weights come from; logits within 1e-5 relative / 1e-4 absolute."""

import h5py
import numpy as np
import pytest
from bert4keras3_files import write_bert4keras3_file
from family_checks import assert_matches, hf_logits, predict, ragged_batch

from b4k3_models import CheckpointMismatchError, build_transformer_model


@pytest.mark.parametrize("name", ["gemma", "gemma2"])
def test_bert4keras3_file_gives_hugging_faces_logits(saved, name, tmp_path):
    directory, reference = saved(name)
    path = write_bert4keras3_file(reference, name, tmp_path / f"{name}.weights.h5")
    model = build_transformer_model(config_path=directory / "config.json", with_lm="linear", keras_weights_path=path)
    ids, mask = ragged_batch(reference.config.vocab_size)
    assert_matches(predict(model, ids), hf_logits(reference, ids, mask), mask)


def test_bert4keras3_file_that_does_not_fit_names_every_missing_and_unused_array(saved, tmp_path):
    directory, reference = saved("gemma2")
    path = write_bert4keras3_file(reference, "gemma2", tmp_path / "gemma2.weights.h5")
    with h5py.File(path, "a") as file:
        del file["layers/gemma2_attention_1/value_dense/vars/0"]
        file.create_dataset("layers/gemma2_attention_1/extra_dense/vars/0", data=np.zeros(3))
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(config_path=directory / "config.json", with_lm="linear", keras_weights_path=path)
    assert error.value.missing == [
        "Transformer-1-MultiHeadSelfAttention/value/kernel (2, 32, 16) "
        "(layers/multi_head_attention_1/v_dense/vars/0): not in the file"
    ]
    assert error.value.unused == ["layers/gemma2_attention_1/extra_dense/vars/0 (3,)"]
