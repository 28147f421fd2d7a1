"""Putting the scores together: eval.json's body, the margins over the baselines, the printed table."""

from __future__ import annotations

from typing import Any

MODEL = "model"
BASELINES = ("schedule", "schedule_delay")


def margins(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per bucket of each yardstick: the model's accuracy minus the better baseline's (positive = ahead)."""
    out: dict[str, Any] = {}
    for measure in ("mbta", "eta_benchmark_2024"):
        rows = {}
        for i, bucket in enumerate(scores[MODEL][measure]["buckets"]):
            ours = bucket["accuracy"]
            theirs = [scores[b][measure]["buckets"][i]["accuracy"] for b in BASELINES]
            best = max((t for t in theirs if t is not None), default=None)
            rows[bucket["bucket"]] = None if ours is None or best is None else round(ours - best, 4)
        out[measure] = rows
    return out


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def _sec(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.0f}"


def table(scores: dict[str, dict[str, Any]]) -> str:
    names = (MODEL, *BASELINES)
    lines = []
    for measure, title in (("mbta", "MBTA bins"), ("eta_benchmark_2024", "ETA Accuracy Benchmark 2024")):
        lines.append(f"{title}: accuracy (share inside the window) | mean abs error s | bias s")
        lines.append(f"  {'bucket':<10} {'window':<12}" + "".join(f"{n:>26}" for n in names))
        for i, bucket in enumerate(scores[MODEL][measure]["buckets"]):
            window = f"[{bucket['window_s'][0]:.0f},+{bucket['window_s'][1]:.0f}]"
            cells = []
            for name in names:
                b = scores[name][measure]["buckets"][i]
                cells.append(f"{_pct(b['accuracy'])} {_sec(b['mean_abs_error_s'])} {_sec(b['bias_s'])}".rjust(26))
            lines.append(f"  {bucket['bucket']:<10} {window:<12}" + "".join(cells))
        total = "overall" if measure == "mbta" else "score"
        lines.append(f"  {total:<23}" + "".join(f"{_pct(scores[n][measure][total]):>26}" for n in names))
        lines.append("")
    lines.append(f"  {'availability':<23}" + "".join(f"{_pct(scores[n]['availability']):>26}" for n in names))
    lines.append(f"  {'wobble (s)':<23}" + "".join(f"{_sec(scores[n]['wobble_s']):>26}" for n in names))
    return "\n".join(lines)
