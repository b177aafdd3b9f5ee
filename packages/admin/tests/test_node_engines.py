"""The Node.js engines check: npm's range grammar, and the warnings a build log gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mastra_admin.core.node_engines import MASTRA_NODE_RANGE, node_warnings, satisfies


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ((22, 13, 0), ">=22.13.0", True),
        ((22, 12, 9), ">=22.13.0", False),
        ((20, 20, 2), MASTRA_NODE_RANGE, False),
        ((22, 13, 1), "^22.13", True),
        ((23, 0, 0), "^22.13", False),
        ((18, 19, 0), ">=18 <21 || >=22.13", True),
        ((21, 0, 0), ">=18 <21 || >=22.13", False),
        ((20, 9, 0), "20 - 22", True),
        ((22, 99, 0), "20 - 22", True),
        ((23, 0, 0), "20 - 22", False),
        ((22, 1, 0), "22.x", True),
        ((22, 1, 0), "~22.1.4", False),
        ((22, 1, 5), "~22.1.4", True),
        ((24, 0, 0), "*", True),
        ((0, 2, 5), "^0.2.3", True),
        ((0, 3, 0), "^0.2.3", False),
        ((22, 0, 0), ">22", False),
        ((23, 0, 0), ">22", True),
        ((22, 5, 0), "<=22.4", False),
        ((22, 4, 9), "<=22.4", True),
    ],
)
def test_npm_ranges(version: tuple[int, int, int], spec: str, expected: bool) -> None:
    assert satisfies(version, spec) is expected


@pytest.mark.parametrize("spec", ["latest", ">=abc", "x" * 300, ">=22 && <24", "^^22"])
def test_unreadable_ranges_are_neither_satisfied_nor_refused(spec: str) -> None:
    assert satisfies((22, 13, 0), spec) is None


def test_the_build_log_names_what_the_runner_node_does_not_satisfy(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"engines": {"node": ">=22.13.0"}}))
    lock = {
        "packages": {
            "": {"engines": {"node": ">=22.13.0"}},
            "node_modules/@mastra/core": {"engines": {"node": ">=22.13.0"}},
            "node_modules/a/node_modules/old": {"engines": {"node": "<=20.0"}},
            "node_modules/fine": {"engines": {"node": ">=18"}},
            "node_modules/odd": {"engines": {"node": "whatever"}},
            "node_modules/none": {},
        }
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    warnings = node_warnings(tmp_path, "v20.20.2")
    assert warnings == [
        "WARNING: the project asks for Node.js >=22.13.0 (package.json engines.node); "
        "this runner builds with Node.js 20.20.2",
        "WARNING: dependencies ask for another Node.js than this runner's 20.20.2: "
        "@mastra/core (>=22.13.0), old (<=20.0)",
    ]
    assert node_warnings(tmp_path, "v22.13.1") == [
        "WARNING: dependencies ask for another Node.js than this runner's 22.13.1: old (<=20.0)"
    ]


def test_hostile_package_files_give_no_crash(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"engines": {"node": 22}}')
    (tmp_path / "package-lock.json").write_text('{"packages": [1, 2]}')
    assert node_warnings(tmp_path, "v22.13.0") == []
    (tmp_path / "package.json").write_bytes(b"\xff\xfe not json")
    (tmp_path / "package-lock.json").write_text('{"packages": {"node_modules/x": "str"}}')
    assert node_warnings(tmp_path, "v22.13.0") == []
    assert node_warnings(tmp_path, "garbage") == [
        "WARNING: cannot tell the Node.js version ('garbage')"
    ]
