"""ELECTRA (`bert4keras3.models.ELECTRA`): BERT's network without a pooler, its embeddings
projected to `hidden_size` when `embedding_size` differs, with the discriminator's head
(`with_discriminator`) or the generator's masked-LM head (`with_mlm`), and its checkpoint name maps
(Google's ELECTRA TF names, `electra/...`, and Hugging Face's `electra`).

Google's pretraining checkpoints hold both models: the discriminator under `electra/`, the
generator under `generator/`, their embedding tables shared under `electra/embeddings/`. A model
with `with_mlm` reads the generator, any other the discriminator; the other model's arrays are
known and left alone.
"""

import keras

from b4k3_models.bert import BERT
from b4k3_models.checkpoint_names import GOOGLE_NAMES, HF_NAMES, hf_base_prefix

# The scopes of the discriminator's and the generator's own arrays in Google's checkpoints.
DISCRIMINATOR_SCOPES = ("electra/encoder/", "electra/embeddings_project/", "discriminator_predictions/")
GENERATOR_SCOPES = ("generator/", "generator_predictions/")


class ELECTRA(BERT):
    """ELECTRA's discriminator or generator.

    Args:
        with_discriminator: add the discriminator's head (`Discriminator-Dense`, then
            `Discriminator-Prediction`, one unit per token): True (sigmoid: the probability that
            a token was replaced), 'linear' (logits) or an activation.
        **kwargs: the arguments of `BERT`; `with_mlm` is the generator's masked-LM head. ELECTRA
            has no pooler: `with_pool` and `with_nsp` are refused.

    Outputs: the sequence output, or the head's output (`(batch, len, 1)` for the discriminator).
    """

    optional_layers = ("Discriminator-Dense", "Discriminator-Prediction", "MLM-Dense", "MLM-Norm", "MLM-Bias")
    hf_base_prefixes = ("electra.",)

    def __init__(self, max_position, with_discriminator=False, **kwargs):
        pooled = sorted(name for name in ("with_pool", "with_nsp") if kwargs.get(name))
        if pooled:
            raise TypeError(
                f"ELECTRA has no pooler, so no {pooled}: use with_discriminator (the discriminator's head) or "
                "with_mlm (the generator's), or pool the sequence output yourself"
            )
        super().__init__(max_position, **kwargs)
        self.with_discriminator = with_discriminator

    def apply_final_layers(self, inputs):
        """The sequence output, the generator's MLM head (BERT's) or the discriminator's head."""
        if not self.with_discriminator:
            return super().apply_final_layers(inputs)
        if self.with_mlm:
            raise TypeError(
                "ELECTRA: with_discriminator (the discriminator's head) and with_mlm (the generator's, also set by "
                "application='lm' / 'unilm') belong to two different models; ask for one"
            )
        x = self.apply(
            inputs,
            keras.layers.Dense,
            units=self.hidden_size,
            activation=self.hidden_act,
            kernel_initializer=self.initializer,
            name="Discriminator-Dense",
        )
        return self.apply(
            x,
            keras.layers.Dense,
            units=1,
            activation="sigmoid" if self.with_discriminator is True else self.with_discriminator,
            kernel_initializer=self.initializer,
            name="Discriminator-Prediction",
        )

    @classmethod
    def from_hf_config(cls, hf_config):
        """`ELECTRA` arguments from a Hugging Face `ElectraConfig` dict: BERT's and `embedding_size`."""
        return {**super().from_hf_config(hf_config), "embedding_size": hf_config.get("embedding_size", 128)}

    def loads_generator(self, checkpoint):
        """Whether the encoder comes from a Google checkpoint's generator (`generator/`): for the
        MLM head of a checkpoint that holds the generator."""
        return bool(self.with_mlm) and any(key.startswith("generator/") for key in checkpoint)

    def variable_mapping(self, checkpoint):
        """BERT's block layout under ELECTRA's scopes, the embedding projection and both heads."""
        if checkpoint.format == "hf":
            names = HF_NAMES
            base = hf_base_prefix(checkpoint, self.hf_base_prefixes)
            mapping = self._encoder_mapping(names, f"{base}embeddings", f"{base}encoder.layer.{{}}", None)
            mapping["Embedding-Mapping"] = names.dense(f"{base}embeddings_project")
            discriminator = ("discriminator_predictions.dense", "discriminator_predictions.dense_prediction")
            mlm = ("generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head.bias")
        else:
            names = GOOGLE_NAMES
            model = "generator" if self.loads_generator(checkpoint) else "electra"
            mapping = self._encoder_mapping(names, "electra/embeddings", f"{model}/encoder/layer_{{}}", None)
            mapping["Embedding-Mapping"] = names.dense(f"{model}/embeddings_project")
            discriminator, generator = names.scope("discriminator_predictions"), names.scope("generator_predictions")
            discriminator = (discriminator("dense"), discriminator("dense_1"))
            mlm = (generator("dense"), generator("LayerNorm"), generator("output_bias"))
        mapping["Discriminator-Dense"] = names.dense(discriminator[0])
        mapping["Discriminator-Prediction"] = names.dense(discriminator[1])
        mapping.update(self._mlm_mapping(names, *mlm))
        return mapping

    def known_extra_keys(self, checkpoint):
        """The generator's output matrix (Hugging Face: a copy of the tied token embeddings), and in
        a Google pretraining checkpoint the arrays of the model not loaded."""
        if checkpoint.format == "hf":
            return [key for key in ("generator_lm_head.weight",) if key in checkpoint]
        other = DISCRIMINATOR_SCOPES if self.loads_generator(checkpoint) else GENERATOR_SCOPES
        return [key for key in checkpoint if key.startswith(other)]
