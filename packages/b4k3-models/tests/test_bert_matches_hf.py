"""BERT and RoBERTa loaded from Hugging Face checkpoints give Hugging Face's outputs: sequence
output, pooled output, MLM and NSP logits, with padding, within 1e-5 relative / 1e-4 absolute."""

import keras
import numpy as np
import pytest
import torch
import transformers
from family_checks import TINY_BERT, assert_matches, padded_batch, predict, run_family_parity_test, save_hf_model

from b4k3_models import build_transformer_model


def hf_outputs(model, ids, mask, segments=None):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=None if segments is None else torch.tensor(segments, dtype=torch.long),
            output_hidden_states=True,
        )


@pytest.fixture(scope="module")
def bert_batch():
    ids, mask = padded_batch(TINY_BERT["vocab_size"])
    segments = np.zeros_like(ids)
    segments[:, 4:] = 1  # a second segment in each row (and on the padding, as a tokenizer pads)
    return ids, mask, segments


def test_bert_model_sequence_and_pooled_outputs(bert_model, bert_batch):
    directory, reference = bert_model
    ids, mask, segments = bert_batch
    expected = hf_outputs(reference, ids, mask, segments)

    run_family_parity_test(directory, [ids, segments], expected.last_hidden_state.numpy(), mask)

    pooled = build_transformer_model(checkpoint_path=directory, with_pool=True)
    assert_matches(predict(pooled, [ids, segments]), expected.pooler_output.numpy())


def test_bert_for_pretraining_mlm_and_nsp_logits(bert_pretraining, bert_batch):
    directory, reference = bert_pretraining
    ids, mask, segments = bert_batch
    expected = hf_outputs(reference, ids, mask, segments)

    model = build_transformer_model(checkpoint_path=directory, with_nsp="linear", with_mlm="linear")
    nsp_logits, mlm_logits = predict(model, [ids, segments])
    assert_matches(nsp_logits, expected.seq_relationship_logits.numpy())
    assert_matches(mlm_logits, expected.prediction_logits.numpy(), mask)

    encoder = build_transformer_model(checkpoint_path=directory)  # the heads' keys are known, not unused
    assert_matches(predict(encoder, [ids, segments]), expected.hidden_states[-1].numpy(), mask)


def test_bert_for_masked_lm_probabilities(tmp_path, bert_batch):
    directory, reference = save_hf_model(transformers.BertForMaskedLM, transformers.BertConfig, TINY_BERT, tmp_path)
    ids, mask, segments = bert_batch
    expected = torch.softmax(hf_outputs(reference, ids, mask, segments).logits, dim=-1).numpy()

    run_family_parity_test(directory, [ids, segments], expected, mask, with_mlm=True)


def test_roberta_with_its_position_offset_and_pad_id(roberta_mlm):
    directory, reference = roberta_mlm
    ids, mask = padded_batch(reference.config.vocab_size, pad_id=1, first_id=0)
    expected = hf_outputs(reference, ids, mask)

    model = build_transformer_model(checkpoint_path=directory, with_mlm="linear", return_keras_model=False)
    assert (model.pad_token_id, model.max_position, model.segment_vocab_size) == (1, 64, 1)
    assert_matches(predict(model.model, [ids, np.zeros_like(ids)]), expected.logits.numpy(), mask)

    encoder = build_transformer_model(checkpoint_path=directory)
    assert_matches(predict(encoder, [ids, np.zeros_like(ids)]), expected.hidden_states[-1].numpy(), mask)


def test_roberta_model_without_prefix_or_heads(tmp_path):
    config = {**TINY_BERT, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1}
    directory, reference = save_hf_model(
        transformers.RobertaModel, transformers.RobertaConfig, config, tmp_path, add_pooling_layer=True
    )
    ids, mask = padded_batch(config["vocab_size"], pad_id=1, first_id=0)
    expected = hf_outputs(reference, ids, mask)

    model = build_transformer_model(checkpoint_path=directory, model="roberta", with_pool=True)
    assert_matches(predict(model, [ids, np.zeros_like(ids)]), expected.pooler_output.numpy())


def test_minilm_sentence_embeddings_match_transformers(minilm_dir):
    """The real pretrained all-MiniLM-L6-v2: mean-pooled, normalized embeddings within 1e-5."""
    from b4k3_ops.snippets import sequence_padding
    from b4k3_tokenize import Tokenizer

    texts = ["A man is eating food.", "The new movie is awesome!", "Un café très crème, s'il vous plaît.", ""]
    tokenizer = Tokenizer(str(minilm_dir / "vocab.txt"), do_lower_case=True)
    ids = sequence_padding([tokenizer.encode(text)[0] for text in texts])
    mask = ids != 0

    model = build_transformer_model(checkpoint_path=minilm_dir)
    hidden = predict(model, [ids, np.zeros_like(ids)])
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    expected = hf_outputs(reference, ids, mask).last_hidden_state.numpy()

    def sentence_embeddings(hidden):
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)

    np.testing.assert_allclose(sentence_embeddings(hidden), sentence_embeddings(expected), rtol=0, atol=1e-5)


def test_the_padding_mask_reaches_the_outputs_as_in_bert4keras(bert_pretraining, bert_batch):
    """Keras' mask of the token ids flows to the sequence and MLM outputs (layers stacked on
    them, e.g. a GlobalPointer, see the padding); the pooled output has none."""
    directory, _ = bert_pretraining
    ids, mask, segments = bert_batch
    model = build_transformer_model(checkpoint_path=directory)
    outputs = model([ids, segments], training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs._keras_mask), mask)
    assert model.outputs[0]._keras_mask is not None

    heads = build_transformer_model(checkpoint_path=directory, with_pool=True, with_mlm=True)
    pooled, mlm = heads.outputs
    assert getattr(pooled, "_keras_mask", None) is None
    assert mlm._keras_mask is not None
