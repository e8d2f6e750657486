"""b4k3_tokenize runs where no deep-learning stack is installed: importing it loads none."""

import subprocess
import sys


def test_import_loads_neither_keras_nor_a_backend():
    probe = (
        "import sys, b4k3_tokenize\n"
        "loaded = {'keras', 'jax', 'torch', 'tensorflow'} & set(sys.modules)\n"
        "print(sorted(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
