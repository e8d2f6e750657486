"""Generating text with Gemma from a bert4keras3 `.weights.h5` file, bert4keras3's
examples/test-gemma-generate.py ported by changing its imports.

bert4keras3 distributed Gemma as its own Keras weights (`model.weights.h5`, `config.json`,
`tokenizer.model`, e.g. the "-Keras" downloads of ModelScope); b4k3 loads those files as they
are. Besides the imports: the model's folder comes from the command line and the backend is the
environment's (the original forced torch). The imports were:

    from bert4keras3.tokenizers import SpTokenizer
    from bert4keras3.models import build_transformer_model

    python examples/bert4keras3/gemma_generate.py gemma_2b_en/
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from b4k3_models import build_transformer_model
from b4k3_tokenize import SpTokenizer

max_len = 30
keras.config.set_dtype_policy("bfloat16")

base_path = sys.argv[1] if len(sys.argv) > 1 else "gemma_2b_en/"
config_path = base_path + "config.json"
weights_path = base_path + "model.weights.h5"
dict_path = base_path + "tokenizer.model"
print(f"Keras backend: {keras.backend.backend()}")

tokenizer = SpTokenizer(base_path + "tokenizer.model", token_start="<bos>", token_end="<eos>")

Gemma = build_transformer_model(
    config_path,
    keras_weights_path=weights_path,
    model="gemma",
    with_lm=True,
    return_keras_model=False,
)

gemma = Gemma.model
gemma.summary()

cache_model = Gemma.build_cache_model([max_len], end_token=1, progress_print=True, search_mode="topp", k=0.7)

test_text = """I want to say """
tokens2 = tokenizer.encode(test_text)[0][:-1]
# print(tokens2)
tokens2 = np.expand_dims(tokens2 + [0] * (max_len - len(tokens2)), 0)
tokens2 = np.concatenate([tokens2, tokens2], 0)
tokens2 = cache_model.predict(tokens2)
print(tokenizer.decode([int(t) for t in tokens2[0]]))
print(tokenizer.decode([int(t) for t in tokens2[1]]))
