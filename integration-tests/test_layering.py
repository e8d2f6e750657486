"""Packages import only what sits below them in the DESIGN graph, and declare exactly that."""

import shutil
import textwrap

import pytest

from workspace import (
    DESIGN_GRAPH,
    REPO_ROOT,
    declared_b4k3_dependencies,
    layering_violations,
    package_dirs,
)


def test_every_design_package_exists():
    assert set(package_dirs()) == set(DESIGN_GRAPH)


@pytest.mark.parametrize("package", sorted(DESIGN_GRAPH))
def test_pyproject_declares_the_design_dependencies(package):
    assert declared_b4k3_dependencies(package_dirs()[package]) == DESIGN_GRAPH[package]


def test_no_package_imports_one_above_it():
    violations = layering_violations()
    assert not violations, "Layering violations:\n" + "\n".join(violations)


@pytest.fixture
def workspace_copy(tmp_path):
    """A copy of the real packages/ tree that a test may add bad imports to."""
    shutil.copytree(REPO_ROOT / "packages", tmp_path / "packages", ignore=shutil.ignore_patterns("__pycache__"))

    def add_module(relative_path, source):
        path = tmp_path / "packages" / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))

    return tmp_path, add_module


@pytest.mark.parametrize(
    ("relative_path", "source", "expected"),
    [
        (
            "b4k3-layers/src/b4k3_layers/bad.py",
            "from b4k3_models import Transformer\n",
            "b4k3_layers imports b4k3_models",
        ),
        (
            "b4k3-ops/tests/test_bad.py",
            "import b4k3_layers.attention\n",
            "b4k3_ops imports b4k3_layers",
        ),
        (
            "b4k3-generate/src/b4k3_generate/bad.py",
            "def load():\n    import b4k3_rwkv\n",
            "b4k3_generate imports b4k3_rwkv",
        ),
        (
            "b4k3-models/src/b4k3_models/bad.py",
            "from b4k3_generate import build_cache_model\n",
            "b4k3_models imports b4k3_generate",
        ),
        (
            "b4k3-tokenize/src/b4k3_tokenize/bad.py",
            "import b4k3_ops\n",
            "b4k3_tokenize imports b4k3_ops",
        ),
        (
            "b4k3-tokenize/src/b4k3_tokenize/bad.py",
            "from keras import ops\n",
            "b4k3_tokenize imports keras",
        ),
        (
            "b4k3-tokenize/src/b4k3_tokenize/bad.py",
            "class A:\n    def f(self):\n        import torch.nn\n",
            "b4k3_tokenize imports torch",
        ),
    ],
)
def test_checker_reports_a_forbidden_import(workspace_copy, relative_path, source, expected):
    root, add_module = workspace_copy
    add_module(relative_path, source)
    violations = layering_violations(root)
    assert len(violations) == 1, violations
    assert expected in violations[0]
    assert relative_path in violations[0], "the report names the offending file"


def test_checker_allows_the_lazy_import_of_generate_from_models(workspace_copy):
    root, add_module = workspace_copy
    add_module(
        "b4k3-models/src/b4k3_models/transformer.py",
        """
        def build_cache_model(self):
            from b4k3_generate import build_cache_model
            return build_cache_model(self)
        """,
    )
    assert layering_violations(root) == []
