"""The backtest's fair comparison: the model against each baseline where
the windows no longer decide it (``shipments.eta_scoring``'s ``FAIR`` rows).

- calibrated: the baseline's window made as the model's is, from its own
  past errors; the share inside, the width and the interval score;
- equal width: the share inside when both sides have the model's window
  (shifted onto each one's estimate), and when both have the baseline's.

Pure: cells in, a Markdown table and the winners out.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipments.eta_model import BUCKETS
from shipments.eta_scoring import AT_MODEL_WIDTH, BASELINES, CALIBRATED, MODEL_AT_WIDTH, Cell


@dataclass(frozen=True)
class Contest:
    column: str
    model: float
    baseline: float
    higher_wins: bool

    @property
    def winner(self) -> str:
        if round(self.model, 3) == round(self.baseline, 3):
            return "tie"
        return "model" if (self.model > self.baseline) == self.higher_wins else "baseline"


COLUMNS = (
    "calibrated: inside",
    "calibrated: width min",
    "calibrated: interval score min",
    "inside at the model's width",
    "inside at the baseline's width",
)


def contests(cells: dict[tuple[str, str], Cell], name: str, b: str) -> list[Contest] | None:
    """The five contests of the model against baseline ``name`` on bucket
    ``b``, or None where that bucket has no fair rows."""
    model = cells.get(("model", b))
    calibrated = cells.get((CALIBRATED.format(name), b))
    at_model = cells.get((AT_MODEL_WIDTH.format(name), b))
    model_at = cells.get((MODEL_AT_WIDTH.format(name), b))
    theirs = cells.get((name, b))
    if None in (model, calibrated, at_model, model_at, theirs):
        return None
    return [
        Contest(COLUMNS[0], model.inside, calibrated.inside, True),
        Contest(COLUMNS[1], model.width_min, calibrated.width_min, False),
        Contest(COLUMNS[2], model.interval_min, calibrated.interval_min, False),
        Contest(COLUMNS[3], model.inside, at_model.inside, True),
        Contest(COLUMNS[4], model_at.inside, theirs.inside, True),
    ]


def _cell(contest: Contest) -> str:
    if contest.column.endswith("min"):
        figures = f"{contest.model:.0f} / {contest.baseline:.0f}"
    else:
        figures = f"{contest.model:.0%} / {contest.baseline:.0%}"
    return f"{figures} {contest.winner}"


def fair_table(cells: dict[tuple[str, str], Cell]) -> str:
    """One row per bucket and baseline; each cell "model / baseline winner"."""
    lines = [
        "| stops ahead | against | " + " | ".join(COLUMNS) + " |",
        "| --- | --- |" + " ---: |" * len(COLUMNS),
    ]
    for b in BUCKETS:
        for name in BASELINES:
            row = contests(cells, name, b)
            if row is not None:
                lines.append(f"| {b} | {name} | " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def losses(cells: dict[tuple[str, str], Cell]) -> list[str]:
    """Every contest the model does not win, as "bucket, baseline: column"."""
    out = []
    for b in BUCKETS:
        for name in BASELINES:
            for contest in contests(cells, name, b) or ():
                if contest.winner != "model":
                    out.append(f"{b} vs {name}: {contest.column} ({contest.winner})")
    return out
