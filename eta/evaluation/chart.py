"""accuracy.png: accuracy by minutes before arrival, the model against the baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(scores: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    panels = (("mbta", "MBTA windows", 30), ("eta_benchmark_2024", "ETA Accuracy Benchmark 2024 windows", 15))
    for ax, (measure, title, last) in zip(axes, panels, strict=True):
        for name, style in (("model", "-o"), ("schedule_delay", "--s"), ("schedule", ":^")):
            rows = [r for r in scores[name]["by_minute"] if r["minute"] <= last and r[measure] is not None]
            ax.plot([r["minute"] for r in rows], [r[measure] for r in rows], style, label=name, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("minutes before the actual arrival")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of predictions inside the window")
    axes[0].set_ylim(0, 1)
    axes[0].legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
