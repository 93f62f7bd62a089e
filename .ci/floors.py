"""Print the floors of pyproject.toml as pip constraints, or check that they are installed.

``python .ci/floors.py`` prints ``name==version`` for every ``name>=version`` runtime dependency
and every dependency of the ``rsa`` extra: the constraints ``make test-floors`` installs, so the
floors it tests are always exactly the ones pyproject.toml declares. ``--check`` (run by the floors
venv's interpreter) exits non-zero unless each of them is installed at that version.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

_FLOOR = re.compile(r"^([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)$")


def floors() -> dict[str, str]:
    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    result = {}
    for spec in [*project["dependencies"], *project["optional-dependencies"]["rsa"]]:
        match = _FLOOR.match(spec.replace(" ", ""))
        if match is None:
            raise SystemExit(f"not a plain floor, cannot pin it: {spec!r}")
        result[match.group(1)] = match.group(2)
    return result


def main() -> int:
    pins = floors()
    if sys.argv[1:] == ["--check"]:
        wrong = {
            name: metadata.version(name)
            for name, version in pins.items()
            if metadata.version(name) != version
        }
        for name, version in sorted(pins.items()):
            print(f"{name}=={metadata.version(name)} (floor {version})")
        return 1 if wrong else 0
    for name, version in sorted(pins.items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
