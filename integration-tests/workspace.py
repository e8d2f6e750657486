"""The b4k3 packages, the dependency graph DESIGN.md fixes for them, and the imports they make.

Shared by the layering test and the packaging check, so both read the workspace the same way.
"""

import ast
import dataclasses
import pathlib
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# Direct b4k3 dependencies of each package, as the DESIGN graph draws them (import names).
DESIGN_GRAPH = {
    "b4k3_tokenize": set(),
    # bert4keras3.snippets' text helpers (truncate_sequences, lowercase_and_normalize) live in
    # b4k3_tokenize; b4k3_ops.snippets re-exports them rather than keeping a copy.
    "b4k3_ops": {"b4k3_tokenize"},
    "b4k3_layers": {"b4k3_ops"},
    "b4k3_models": {"b4k3_layers"},
    "b4k3_rwkv": {"b4k3_models"},
    "b4k3_generate": {"b4k3_models"},
}

# Upward imports DESIGN.md allows, only inside a function body (imported lazily, when called):
# `Transformer.build_cache_model` delegates to b4k3-generate.
LAZY_UPWARD_IMPORTS = {("b4k3_models", "b4k3_generate")}

# What b4k3_tokenize must never import: it has to work where no deep-learning stack is installed.
KERAS_AND_BACKENDS = {"keras", "tf_keras", "jax", "jaxlib", "flax", "torch", "tensorflow"}


def import_name(distribution):
    """`b4k3-layers` -> `b4k3_layers`."""
    return distribution.replace("-", "_")


def distribution_name(package):
    """`b4k3_layers` -> `b4k3-layers`."""
    return package.replace("_", "-")


def package_dirs(root=REPO_ROOT):
    """Import name -> package folder, for every package under packages/."""
    return {import_name(path.parent.name): path.parent for path in sorted(root.glob("packages/*/pyproject.toml"))}


def read_pyproject(package_dir):
    return tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))


def declared_b4k3_dependencies(package_dir):
    """Import names of the b4k3 packages a package's pyproject.toml requires."""
    requirements = read_pyproject(package_dir)["project"].get("dependencies", [])
    names = (canonicalize_name(Requirement(requirement).name) for requirement in requirements)
    return {import_name(name) for name in names if name.startswith("b4k3-")}


def transitive_closure(graph, package):
    """Every package reachable from `package` along the graph's edges, `package` excluded."""
    seen, stack = set(), list(graph[package])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return seen


@dataclasses.dataclass(frozen=True)
class Import:
    path: pathlib.Path
    line: int
    module: str  # the top-level module imported, e.g. `keras` for `from keras import ops`
    lazy: bool  # inside a function body, so it runs only when the function is called


def imports_of(path):
    """Every absolute import in a Python file, module-level and lazy ones alike."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                modules = [child.module]
            else:
                modules = []
            for module in modules:
                found.append(Import(path, child.lineno, module.split(".")[0], in_function))
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, in_function or is_function)

    visit(tree, False)
    return found


def layering_violations(root=REPO_ROOT):
    """Every import under packages/ that breaks the DESIGN graph, as readable lines."""
    violations = []
    for package, package_dir in package_dirs(root).items():
        if package not in DESIGN_GRAPH:
            violations.append(f"{package_dir}: package {package} is not in the DESIGN graph")
            continue
        allowed = transitive_closure(DESIGN_GRAPH, package) | {package}
        for path in sorted(package_dir.rglob("*.py")):
            in_source = "src" in path.relative_to(package_dir).parts
            for found in imports_of(path):
                where = f"{path.relative_to(root)}:{found.line}"
                if found.module in DESIGN_GRAPH and found.module not in allowed:
                    if found.lazy and (package, found.module) in LAZY_UPWARD_IMPORTS:
                        continue
                    violations.append(
                        f"{where}: {package} imports {found.module}, which is not below it "
                        f"(it may import {sorted(allowed - {package}) or 'no b4k3 package'})"
                    )
                if package == "b4k3_tokenize" and in_source and found.module in KERAS_AND_BACKENDS:
                    violations.append(
                        f"{where}: b4k3_tokenize imports {found.module}; it must run without Keras or a backend"
                    )
    return violations
