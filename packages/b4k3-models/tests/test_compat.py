"""`from b4k3_models.compat import *` serves code written after `from bert4keras3.models import *`:
the names it gave (np, keras, K, ops, the Keras layers, bert4keras3's layers under their names,
the builders) and its string names, without adding anything to `b4k3_models` itself. Run in a
fresh process, as a user's script: the import registers names with Keras."""

import subprocess
import sys
import textwrap

BERT4KERAS3_STYLE = """
from b4k3_models.compat import *

import b4k3_layers
import b4k3_models
import keras as keras_module

# The names bert4keras3.models' star import gave.
assert np.zeros(2).shape == (2,) and keras is keras_module and json.dumps([1]) == "[1]"
assert K.floatx() == "float32" and ops.flatten is not None and Model is keras_module.Model
assert Dense is keras_module.layers.Dense and Input is keras_module.Input and Lambda is keras_module.layers.Lambda
for name in b4k3_layers.__all__:
    assert globals()[name] is getattr(b4k3_layers, name), name  # bert4keras3's layers win
for name in ("build_transformer_model", "Transformer", "BERT", "extend_with_unified_language_model"):
    assert globals()[name] is getattr(b4k3_models, name), name
for name in ("sequence_masking", "insert_arguments", "string_matching", "is_string", "orthogonally_resize"):
    assert callable(globals()[name]), name

# ... and nothing of it in b4k3_models' own namespace.
assert not any(hasattr(b4k3_models, name) for name in ("np", "keras", "K", "ops", "Dense", "Loss", "Model"))

# bert4keras3's string names resolve, in layers and compile.
x = Input((4,))
y = Dense(3, activation="gelu_tanh", kernel_initializer="initializer")(x)
model = Model(x, y)
model.compile(optimizer="adam", loss="multilabel_categorical_crossentropy")
data = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
model.fit(data, (data[:, :3] > 0).astype("float32"), epochs=1, verbose=0)
table = Embedding(6, 8, embeddings_initializer="Sinusoidal")
table.build((None,))
print("ok")
"""


def test_star_import_serves_bert4keras3_code_in_a_fresh_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BERT4KERAS3_STYLE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "ok"


def test_importing_b4k3_registers_no_string_names(tmp_path):
    code = """
    import keras, b4k3_models
    try:
        keras.activations.get("gelu_tanh")
    except ValueError:
        print("not registered")
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "not registered"
