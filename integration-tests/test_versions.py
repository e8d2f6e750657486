"""The version rules of `versions.py` hold for the tree, and each rule fails when broken: a sibling
range that excludes the sibling's version, code changed without a version and changelog moving,
a version without its changelog section. Run by the packaging check (and every test run)."""

import re
import shutil

import pytest
from versions import read_record, record_release, source_digest, version_problems, versions_table

from workspace import REPO_ROOT


def test_the_tree_follows_the_version_rules():
    assert version_problems() == []


def test_the_readme_table_is_the_current_one():
    assert versions_table() in (REPO_ROOT / "README.md").read_text(encoding="utf-8"), (
        f"update the versions table of README.md to:\n{versions_table()}"
    )


@pytest.fixture
def released_tree(tmp_path):
    """A copy of packages/, recorded as released as it is now."""
    shutil.copytree(REPO_ROOT / "packages", tmp_path / "packages", ignore=shutil.ignore_patterns("__pycache__"))
    record_release(tmp_path)
    assert version_problems(tmp_path) == []
    return tmp_path


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_range_that_excludes_the_siblings_version_fails(released_tree):
    pyproject = released_tree / "packages/b4k3-models/pyproject.toml"
    edit(pyproject, '"b4k3-layers>=0.2,<0.3"', '"b4k3-layers>=0.3,<0.4"')
    record_release(released_tree)  # the range alone is wrong, not an unreleased change
    (problem,) = version_problems(released_tree)
    assert re.search(r"b4k3-models accepts b4k3-layers.*excludes b4k3-layers's current version 0\.2\.0", problem)


def test_changed_code_without_a_new_version_fails_until_version_and_changelog_move(released_tree):
    package = released_tree / "packages/b4k3-generate"
    source = package / "src/b4k3_generate/samplers.py"
    source.write_text(source.read_text(encoding="utf-8") + "\n# a change\n", encoding="utf-8")
    (problem,) = version_problems(released_tree)
    assert "b4k3-generate's code changed since 0.2.0 was released, but its version is still 0.2.0" in problem

    edit(package / "src/b4k3_generate/__init__.py", '__version__ = "0.2.0"', '__version__ = "0.2.1"')
    (problem,) = version_problems(released_tree)
    assert "b4k3-generate 0.2.1: packages/b4k3-generate/CHANGELOG.md has no '## 0.2.1' section" in problem

    edit(package / "CHANGELOG.md", "## 0.2.0", "## 0.2.1\n- A change.\n\n## 0.2.0")
    assert version_problems(released_tree) == []


def test_the_record_holds_every_package_and_docs_do_not_move_a_digest(released_tree):
    record = read_record(released_tree)
    packages = {path.parent.name for path in (released_tree / "packages").glob("*/pyproject.toml")}
    assert set(record) == packages
    package = released_tree / "packages/b4k3-ops"
    (package / "README.md").write_text("docs are not code\n", encoding="utf-8")
    assert source_digest(package) == record["b4k3-ops"]["sources"]
    assert version_problems(released_tree) == []
