"""`.keras` files reload in a fresh process after one import: `import b4k3_models` registers every
serializable class of b4k3-layers and b4k3-models (the README says so), and importing
b4k3_layers alone registers all of b4k3-layers' (private bases, `_RMSNorm`, are never saved)."""

import subprocess
import sys
import textwrap

import pytest

LIST_CLASSES = """
import importlib, inspect, json, pkgutil, keras
import {package}
registered = set(keras.saving.get_custom_objects())
classes = []
for name in {packages}:
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            public = not cls.__name__.startswith("_")
            if public and cls.__module__ == module.name and issubclass(cls, (keras.layers.Layer, keras.Model)):
                classes.append(cls)
missing = sorted({{c.__module__ + "." + c.__name__ for c in classes
                   if keras.saving.get_registered_name(c) not in registered}})
print(json.dumps(missing))
"""


def run_fresh(code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("package", "packages"),
    [("b4k3_models", ["b4k3_layers", "b4k3_models"]), ("b4k3_layers", ["b4k3_layers"])],
)
def test_one_import_registers_every_serializable_class(package, packages, tmp_path):
    assert run_fresh(LIST_CLASSES.format(package=package, packages=packages), tmp_path) == "[]"


def test_a_saved_bert_reloads_in_a_fresh_process_after_import_b4k3_models(tmp_path):
    import json

    import numpy as np
    from family_checks import TINY_BERT

    from b4k3_models import build_transformer_model

    (tmp_path / "config.json").write_text(json.dumps(TINY_BERT))
    model = build_transformer_model(config_path=tmp_path / "config.json", with_mlm=True, with_pool=True)
    model.save(tmp_path / "bert.keras")
    tokens = np.array([[2, 5, 7, 0]])
    np.save(tmp_path / "expected.npy", model.predict([tokens, np.zeros_like(tokens)], verbose=0)[0])
    reloaded = """
    import keras, numpy as np
    import b4k3_models  # the one import .keras files of b4k3 models need
    model = keras.saving.load_model("bert.keras")
    tokens = np.array([[2, 5, 7, 0]])
    print(np.abs(model.predict([tokens, np.zeros_like(tokens)], verbose=0)[0] - np.load("expected.npy")).max())
    """
    assert float(run_fresh(reloaded, tmp_path)) < 1e-5
