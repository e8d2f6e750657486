"""Each package's wheel builds on its own and works installed with only what it declares.

Every wheel is built from a copy of its package folder alone (nothing else of the repository is
there to lean on), then installed into a fresh virtual environment: its b4k3 siblings come from
the wheels just built, everything else from the package index. Slow (a virtual environment per
package), so CI runs it once, not once per backend: `hatch run packaging:check`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import venv

import pytest

from workspace import DESIGN_GRAPH, REPO_ROOT, distribution_name, package_dirs, transitive_closure

pytestmark = pytest.mark.slow

BACKENDS = {"jax", "jaxlib", "torch", "tensorflow", "tensorflow-cpu", "tf-keras"}


def only_what_you_need():
    """The README's "Use only what you need" examples: the tokenizer's, then the layers'."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Use only what you need", 1)[1].split("\n## ", 1)[0]
    tokenizer_only, layers_only = re.findall(r"^```python\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    return {"b4k3_tokenize": tokenizer_only, "b4k3_layers": layers_only}


ONLY_WHAT_YOU_NEED = only_what_you_need()


def run(command, **kwargs):
    """Runs a command; on failure, the assertion shows its whole output."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """Builds every package's wheel, each from a lone copy of its folder.

    Returns the folder of wheels and the version each wheel carries, by import name.
    """
    wheels = tmp_path_factory.mktemp("wheels")
    for package_dir in package_dirs().values():
        alone = tmp_path_factory.mktemp("alone") / package_dir.name
        shutil.copytree(package_dir, alone, ignore=shutil.ignore_patterns("__pycache__", "dist", "build"))
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(alone)])
    # Wheel file names are `<import name>-<version>-<tags>.whl`.
    versions = dict(wheel.name.split("-")[:2] for wheel in wheels.glob("*.whl"))
    assert set(versions) == set(DESIGN_GRAPH), f"built {sorted(versions)}"
    return wheels, versions


def fresh_environment(path):
    venv.create(path, with_pip=True)
    return path / "bin" / "python"


def installed_distributions(python):
    listing = run([str(python), "-m", "pip", "list", "--format=json"])
    return {entry["name"].lower(): entry["version"] for entry in json.loads(listing)}


@pytest.mark.parametrize("package", sorted(DESIGN_GRAPH))
def test_wheel_installs_alone_with_its_declared_dependencies(package, wheelhouse, tmp_path):
    wheels, versions = wheelhouse
    python = fresh_environment(tmp_path / "venv")
    # Pin every b4k3 package to the version just built, so none can come from the index.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{distribution_name(name)}=={version}\n" for name, version in versions.items()))
    pip_install = [str(python), "-m", "pip", "install", "--find-links", str(wheels), "--constraint", str(constraints)]
    run([*pip_install, distribution_name(package)])

    installed = installed_distributions(python)
    b4k3_installed = {name for name in installed if name.startswith("b4k3-")}
    expected = {distribution_name(name) for name in transitive_closure(DESIGN_GRAPH, package) | {package}}
    assert b4k3_installed == expected
    assert installed[distribution_name(package)] == versions[package]
    assert not BACKENDS & set(installed), "no package may pull in a backend: the user picks one"
    if package == "b4k3_tokenize":
        assert "keras" not in installed, "b4k3-tokenize must install without Keras"
        assert set(installed) - {"pip", "setuptools"} == {"b4k3-tokenize", "numpy"}

    # Keras needs a backend to import: the user's choice, installed after the checks above (which
    # it does not change). JAX is the lightest CPU backend to install anywhere.
    if package != "b4k3_tokenize":
        run([*pip_install, "jax"])
    imported = run(
        [str(python), "-c", f"import {package}; print({package}.__version__)"],
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert imported.strip() == versions[package], "__version__ agrees with the wheel's version"
    if package in ONLY_WHAT_YOU_NEED:
        # The README's "Use only what you need" example of this package runs where only it is installed.
        run([str(python), "-c", ONLY_WHAT_YOU_NEED[package]], env={**os.environ, "KERAS_BACKEND": "jax"})
