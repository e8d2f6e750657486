"""The README's first command works from a fresh copy of the repository: `python3 hatchw run
demo:chat` installs hatch, creates the demo environment (CPU wheels only) and chats with SmolLM2
on JAX. Slow (it installs everything), so CI runs it once, in the packaging check; the second
command, `hatch run test:run`, is what CI itself runs on a fresh clone.

That the answer is transformers' own greedy answer is `test_examples.py`'s check (it needs torch
and transformers, which the demo does not install); here the job runs and prints an answer.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from workspace import REPO_ROOT

pytestmark = pytest.mark.slow


def tracked_files():
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    return [name for name in listing.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def test_the_demo_command_chats_from_a_fresh_copy(tmp_path):
    checkout = tmp_path / "b4k3"
    for name in tracked_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, checkout / name)
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("HATCH", "KERAS"))}
    command = [sys.executable, "hatchw", "run", "demo:chat", "--max-new-tokens", "8"]
    result = subprocess.run(command, cwd=checkout, env=environment, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-4000:]}"
    assert re.search(r"^Keras backend: jax$", result.stdout, re.MULTILINE), result.stdout
    assert "Model: SmolLM2-135M-Instruct.Q4_1.gguf" in result.stdout, result.stdout
    answer = result.stdout.split("Assistant: ", 1)[1].strip()
    assert len(answer.split()) >= 3, result.stdout
    assert (checkout / ".hatch" / "demo").is_dir()
    assert (checkout / ".hatch" / "hatch-1.18.2").is_dir()
