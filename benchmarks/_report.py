"""One row of the benchmark table, and the markdown table itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    """A measured figure beside its reference, measured in the same run.

    ``ratio`` is ``value / reference`` when both are given; ``goal`` says in words
    what the issue asks for and ``met`` whether this run met it.
    """

    bench: str
    figure: str
    value: float
    unit: str
    reference: float | None = None
    reference_label: str = ""
    goal: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0):
            return None
        assert self.reference is not None
        return self.value / self.reference


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def markdown(figures: list[Figure]) -> str:
    lines = [
        "| bench | figure | value | reference | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        ref = (
            f"{_fmt(f.reference)} {f.unit} ({f.reference_label})" if f.reference is not None else ""
        )
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
        value = f"{_fmt(f.value)} {f.unit}"
        lines.append(f"| {f.bench} | {f.figure} | {value} | {ref} | {ratio} | {f.goal} | {met} |")
    return "\n".join(lines)
