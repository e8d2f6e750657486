"""Every `pip install ...` hint in the packages' sources works from a checkout: it names a path
(`./packages/...`) or a package of the index, never an unpublished b4k3 package or an extra of
one (`'b4k3-tokenize[sentencepiece]'` could not be installed by a user who followed it)."""

import re
import sys

import pytest

from workspace import REPO_ROOT

HINT = re.compile(r"pip install ([^\"\n]+?)(?=\"|\)|$| from | \(|\.?$)", re.MULTILINE)
SOURCES = sorted(REPO_ROOT.glob("packages/*/src/**/*.py"))


def hints():
    for path in SOURCES:
        for match in HINT.finditer(path.read_text(encoding="utf-8")):
            yield path.relative_to(REPO_ROOT), match.group(1).strip()


def test_hints_are_found():
    assert len(list(hints())) >= 3, list(hints())


@pytest.mark.parametrize(("path", "hint"), list(hints()))
def test_hint_installs_from_a_checkout_or_the_index(path, hint):
    for requirement in hint.replace("'", " ").split():
        if requirement.startswith("./packages/"):
            assert (REPO_ROOT / requirement.split("[")[0]).is_dir(), f"{path}: {hint}"
        elif not requirement.startswith("-"):
            assert not requirement.startswith("b4k3"), f"{path}: {hint!r} names an unpublished package"
            assert "[" not in requirement or not requirement.startswith("b4k3"), f"{path}: {hint}"


def test_the_build_cache_model_hint_names_the_checkout_path(monkeypatch):
    from b4k3_models import Transformer

    monkeypatch.setitem(sys.modules, "b4k3_generate", None)
    with pytest.raises(ImportError, match=r"pip install \./packages/b4k3-generate"):
        Transformer.build_cache_model(object(), [8], end_token=1)
