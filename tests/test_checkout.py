"""The repository's own conftest fails a test that reads from beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


def test_a_test_reading_beside_the_checkout_fails(pytester: pytest.Pytester) -> None:
    checkout = pytester.mkdir("checkout")
    (checkout / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    beside = pytester.path / "shared.json"
    beside.write_text("{}")
    (checkout / "inside.json").write_text("{}")
    (checkout / "test_reads.py").write_text(
        "from pathlib import Path\n"
        "HERE = Path(__file__).resolve().parent\n"
        "def test_beside():\n"
        "    assert (HERE.parent / 'shared.json').read_text() == '{}'\n"
        "def test_inside():\n"
        "    assert (HERE / 'inside.json').read_text() == '{}'\n"
    )
    result = pytester.runpytest_subprocess(str(checkout), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*read outside the checkout*shared.json*"])


def test_the_captured_exporter_requests_are_in_the_repository() -> None:
    fixtures = ROOT / "tests" / "fixtures" / "mastra-exporter"
    names = {p.name for p in fixtures.iterdir()}
    signals = ("spans", "logs", "metrics", "scores", "feedback")
    assert {f"{s}.request.json" for s in signals} | {"README.md"} <= names
