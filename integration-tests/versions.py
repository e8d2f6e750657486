"""The packages' own versions, the sibling ranges they accept, and what was last released.

Every package under packages/ has its own version (`__version__` in its `__init__.py`), a
`CHANGELOG.md` with a `## <version>` section per version, and declares the range of each b4k3
sibling it accepts in its pyproject.toml. `packages/released.json` records, per package, the
last released version and a digest of its sources then (`src/` and `pyproject.toml`). The rules
the packaging check enforces (`test_versions.py`):

- a package whose sources differ from the record has moved to a higher version than the
  recorded one, with a changelog section for it (an unreleased version collects every change
  until it is released);
- every sibling range accepts the sibling's current version;
- the root README's table of versions and ranges is the current one.

At a release, record it: `python integration-tests/versions.py --record`.
"""

import hashlib
import json
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from workspace import REPO_ROOT, package_dirs, read_pyproject

RECORD = "packages/released.json"
VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def version_of(package_dir):
    """The version the package's `__init__.py` declares (what its wheel carries)."""
    init = package_dir / read_pyproject(package_dir)["tool"]["hatch"]["version"]["path"]
    return VERSION_LINE.search(init.read_text(encoding="utf-8")).group(1)


def source_digest(package_dir):
    """SHA-256 of the package's code: every file under `src/` (caches aside) and its pyproject.toml."""
    files = [path for path in sorted((package_dir / "src").rglob("*")) if path.is_file()]
    files = [path for path in files if "__pycache__" not in path.parts and path.suffix != ".pyc"]
    digest = hashlib.sha256()
    for path in [*files, package_dir / "pyproject.toml"]:
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def changelog_versions(package_dir):
    """The versions with a `## <version>` section in the package's CHANGELOG.md."""
    changelog = package_dir / "CHANGELOG.md"
    if not changelog.is_file():
        return set()
    return set(re.findall(r"^## (\S+)", changelog.read_text(encoding="utf-8"), re.MULTILINE))


def sibling_ranges(package_dir):
    """`{sibling distribution name: its accepted specifier}` from the package's dependencies."""
    requirements = (Requirement(line) for line in read_pyproject(package_dir)["project"].get("dependencies", []))
    return {canonicalize_name(r.name): r.specifier for r in requirements if r.name.startswith("b4k3-")}


def readable(specifier):
    """`>=0.2,<0.3` rather than packaging's `<0.3,>=0.2`: lower bounds first."""
    return ",".join(sorted(map(str, specifier), key=lambda bound: not bound.startswith(">")))


def read_record(root=REPO_ROOT):
    path = root / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def version_problems(root=REPO_ROOT):
    """Every breach of the rules above, as readable lines saying what to do."""
    problems, record = [], read_record(root)
    packages = {package_dir.name: package_dir for package_dir in package_dirs(root).values()}
    versions = {name: version_of(package_dir) for name, package_dir in packages.items()}
    for name, package_dir in packages.items():
        version = versions[name]
        if version not in changelog_versions(package_dir):
            problems.append(f"{name} {version}: packages/{name}/CHANGELOG.md has no '## {version}' section")
        released = record.get(name)
        if released is None:
            problems.append(f"{name} is not in {RECORD}: record it with python integration-tests/versions.py --record")
        elif source_digest(package_dir) != released["sources"] and Version(version) <= Version(released["version"]):
            problems.append(
                f"{name}'s code changed since {released['version']} was released, but its version is still "
                f"{version}: raise __version__ and add a '## <new version>' section to its CHANGELOG.md"
            )
        for sibling, specifier in sibling_ranges(package_dir).items():
            if sibling in versions and not specifier.contains(versions[sibling], prereleases=True):
                problems.append(
                    f"{name} accepts {sibling}{specifier}, which excludes {sibling}'s current version "
                    f"{versions[sibling]}: widen the range in packages/{name}/pyproject.toml"
                )
    return problems


def versions_table(root=REPO_ROOT):
    """The root README's table: each package's version and the sibling ranges it accepts."""
    lines = ["| Package | Version | Accepts |", "|---|---|---|"]
    for package_dir in package_dirs(root).values():
        ranges = ", ".join(f"`{name}{readable(spec)}`" for name, spec in sorted(sibling_ranges(package_dir).items()))
        lines.append(f"| `{package_dir.name}` | {version_of(package_dir)} | {ranges or 'no b4k3 package'} |")
    return "\n".join(lines)


def record_release(root=REPO_ROOT):
    """Writes every package's current version and source digest as the released ones."""
    record = {
        package_dir.name: {"version": version_of(package_dir), "sources": source_digest(package_dir)}
        for package_dir in package_dirs(root).values()
    }
    (root / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record_release()
    else:
        print("\n".join(version_problems()) or versions_table())
