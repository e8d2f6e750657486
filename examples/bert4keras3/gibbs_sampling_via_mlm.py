"""Gibbs sampling of sentences through a BERT's masked language model, bert4keras3's
examples/basic_gibbs_sampling_via_mlm.py ported by changing its imports.

Gibbs sampling: mask one token at random, draw a new one from the MLM's distribution at that
position, and repeat; after enough steps the sentences are samples of the model's language.
Besides the imports: the model's folder (`bert_config.json`, `bert_model.ckpt`, `vocab.txt`, a
Google BERT checkpoint with its MLM head) comes from the command line, the sentence is English,
and there are 200 steps (the original's 10000 take hours on a CPU). The imports were:

    from bert4keras3.models import build_transformer_model
    from bert4keras3.tokenizers import Tokenizer
    from bert4keras3.snippets import to_array

    python examples/bert4keras3/gibbs_sampling_via_mlm.py path/to/uncased_L-12_H-768_A-12
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
from tqdm import tqdm

from b4k3_models import build_transformer_model
from b4k3_ops.snippets import to_array
from b4k3_tokenize import Tokenizer

config_path = os.path.join(sys.argv[1], "bert_config.json")
checkpoint_path = os.path.join(sys.argv[1], "bert_model.ckpt")
dict_path = os.path.join(sys.argv[1], "vocab.txt")
print(f"Keras backend: {keras.backend.backend()}")
np.random.seed(0)

tokenizer = Tokenizer(dict_path, do_lower_case=True)  # 建立分词器
model = build_transformer_model(
    config_path=config_path, checkpoint_path=checkpoint_path, with_mlm=True
)  # 建立模型，加载权重

sentences = []
init_sent = "science and technology are the primary productive forces."  # 给定句子或者None
minlen, maxlen = 8, 32
steps = 200
converged_steps = 50
vocab_size = tokenizer._vocab_size

if init_sent is None:
    length = np.random.randint(minlen, maxlen + 1)
    tokens = ["[CLS]"] + ["[MASK]"] * length + ["[SEP]"]
    token_ids = tokenizer.tokens_to_ids(tokens)
    segment_ids = [0] * len(token_ids)
else:
    token_ids, segment_ids = tokenizer.encode(init_sent)
    length = len(token_ids) - 2

for _ in tqdm(range(steps), desc="Sampling"):
    # Gibbs采样流程：随机mask掉一个token，然后通过MLM模型重新采样这个token。
    i = np.random.choice(length) + 1
    token_ids[i] = tokenizer._token_mask_id
    probas = model.predict(to_array([token_ids], [segment_ids]), verbose=3)[0, i]
    token = np.random.choice(vocab_size, p=probas)
    token_ids[i] = token
    sentences.append(tokenizer.decode(token_ids))

print("部分随机采样结果：")
for _ in range(10):
    print(np.random.choice(sentences[converged_steps:]))
