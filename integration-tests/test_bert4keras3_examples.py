"""The bert4keras3 programs ported by changing their imports (examples/bert4keras3/) run as a
user runs them, on the backend of the test environment, and show what they promise: the loss
falls, the beam search with topk=1 is the model's argmax loop, GlobalPointer finds the entities.

(test_examples.py runs the scripts directly under examples/; these live in a subfolder.)
"""

import os
import re
import subprocess
import sys

from workspace import REPO_ROOT

FOLDER = REPO_ROOT / "examples" / "bert4keras3"
TIMEOUT_S = 600  # CPU training, on two shared cores in CI


def run(script):
    result = subprocess.run(
        [sys.executable, str(FOLDER / script)], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO_ROOT
    )
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert re.search(r"^Keras backend: (\w+)$", result.stdout, re.M).group(1) == os.environ.get("KERAS_BACKEND", "jax")
    return result.stdout


def losses(output):
    first, last = re.search(r"^loss: first epoch ([\d.]+), last epoch ([\d.]+)$", output, re.M).groups()
    return float(first), float(last)


def test_every_ported_example_has_a_test():
    tested = {"seq2seq_reverse_unilm.py", "ner_global_pointer.py"}
    assert {path.name for path in FOLDER.glob("*.py")} == tested


def test_ported_examples_change_only_the_imports():
    """Nothing of bert4keras3 is imported; each names the imports it replaced."""
    for path in FOLDER.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        code = source.split('"""', 2)[2]
        assert "bert4keras3" not in code, path.name
        assert "The imports were:" in source, path.name


def test_unilm_seq2seq_trains_and_decodes_with_autoregressive_decoder():
    output = run("seq2seq_reverse_unilm.py")
    first, last = losses(output)
    assert last < 0.8 * first, output
    assert "beam search with topk=1 equals the argmax loop: True" in output, output
    beams = re.findall(r"^source \[([\d, ]*)\] -> beam search \[([\d, ]*)\]$", output, re.M)
    assert len(beams) == 8, output
    samples = re.search(r"^random_sample \(n=3, topk=3\) of .*: (\[.*\])$", output, re.M)
    assert samples, output
    assert samples.group(1).count("[") == 4, output


def test_global_pointer_ner_learns_the_synthetic_entities():
    output = run("ner_global_pointer.py")
    first, last = losses(output)
    assert last < 0.6 * first, output
    f1 = float(re.search(r"^valid: f1 ([\d.]+),", output, re.M).group(1))
    assert f1 > 0.5, output
