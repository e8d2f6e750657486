"""Prints CI's closing summary from its logs: per backend, how long its environment took to
create and what pytest counted; then the packaging check and the total.

Usage: summarize.py LOG_DIR BACKEND... ; exits non-zero when a backend did not run or failed.
"""

import pathlib
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HATCH_HEADER = re.compile(r"^─+ test\.(\w+) ─+$")
PYTEST_RESULT = re.compile(r"^=+ (.+) in [\d.]+s.*=+$")
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")


def pytest_counts(lines):
    """passed / failed / skipped summed over the pytest result lines among `lines` (the packaging
    check runs pytest twice), or None when there is none."""
    results = [match.group(1) for line in lines if (match := PYTEST_RESULT.match(line))]
    if not results:
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for number, kind in COUNT.findall(" ".join(results)):
        kind = {"error": "failed", "errors": "failed", "xpassed": "passed", "xfailed": "skipped"}.get(kind, kind)
        counts[kind] += int(number)
    return counts


def lines_per_backend(log):
    """Splits the output of `hatch run test:run` at hatch's `── test.<backend> ──` headers."""
    sections, current = {}, None
    for line in log:
        if match := HATCH_HEADER.match(line):
            current = sections.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return sections


def read_lines(path):
    return ANSI.sub("", path.read_text(encoding="utf-8", errors="replace")).splitlines() if path.exists() else []


def main(log_dir, backends):
    log_dir = pathlib.Path(log_dir)
    sections = lines_per_backend(read_lines(log_dir / "tests.log"))
    rows = [(backend, sections.get(backend, [])) for backend in backends]
    rows.append(("packaging", read_lines(log_dir / "packaging.log")))

    creation = [
        f"{backend} {seconds.read_text().strip()} s"
        for backend in backends
        if (seconds := log_dir / f"create-{backend}.seconds").exists()
    ]
    print("environment creation: " + ", ".join(creation))

    total = {"passed": 0, "failed": 0, "skipped": 0}
    ok = True
    for name, lines in rows:
        counts = pytest_counts(lines)
        if counts is None:
            print(f"{name}: did not run")
            ok = False
            continue
        print(f"{name}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
        ok = ok and counts["failed"] == 0 and counts["passed"] > 0
        for kind, number in counts.items():
            total[kind] += number
    print(f"total: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
