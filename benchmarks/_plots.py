"""PNG plots of a suite run (``python -m benchmarks --plots DIR``), with matplotlib."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from benchmarks._libs import LABELS, LIBS

STYLE = {
    "atune": {"color": "#1f77b4", "marker": "o"},
    "raytune": {"color": "#d62728", "marker": "s"},
}


def draw(report: dict[str, Any], directory: Path) -> list[Path]:
    """Draw what the report holds; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    rows = report["rows"]
    subtitle = f"{report['machine']}, {report['date'][:10]}"
    written: list[Path] = []

    sweep = [
        r
        for r in rows
        if r["benchmark"] == "throughput" and re.fullmatch(r"\d+ x 2,000 results", r["case"])
    ]
    if sweep:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        counts = [int(r["case"].split()[0]) for r in sweep]
        for lib in LIBS:
            ax.plot(counts, [r[lib] for r in sweep], label=LABELS[lib], **STYLE[lib])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.set_xlabel("trials (each reports 2,000 results in a tight loop)")
        ax.set_ylabel("results per second (fit() end to end)")
        ax.set_title(f"Result throughput, default loggers\n{subtitle}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        written.append(_save(fig, directory / "throughput_vs_trials.png"))

    scale = [r for r in rows if r["benchmark"] == "scale" and r["runs"]]
    if scale:
        runs = scale[0]["runs"]
        for key, label, name in (
            ("ms_per_trial", "ms per trial (over the last interval)", "scale_per_trial_cost.png"),
            ("rss_mb", "driver resident memory (MB)", "scale_driver_memory.png"),
        ):
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            for lib in LIBS:
                curve = runs[lib]["curve"]
                ax.plot(
                    [p["trials"] for p in curve],
                    [p[key] for p in curve],
                    label=LABELS[lib],
                    markersize=3,
                    **STYLE[lib],
                )
            ax.set_xlabel("trials finished in the experiment (one result each)")
            ax.set_ylabel(label)
            if key == "ms_per_trial":
                ax.set_yscale("log")
            ax.set_title(
                f"{label.split(' (')[0].capitalize()} vs experiment size\n{subtitle}", fontsize=10
            )
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
            written.append(_save(fig, directory / name))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
