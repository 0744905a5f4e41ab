"""PNG plots of experiment results (matplotlib, headless); writes files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pallet.sim.packing import PackingSummary

__all__ = ["plot_bars", "plot_gaps", "plot_packing"]


def plot_packing(workload: str, summaries: Sequence[PackingSummary], out_dir: Path) -> Path:
    """GPU allocation vs arrived GPU load, one line per policy."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xs = list(range(len(summaries[0].curve))) if summaries else []
    for s in sorted(summaries, key=lambda s: -s.at(130)):
        ax.plot(
            xs,
            s.curve,
            label=f"{s.policy} ({s.at(100):.2f} / {s.at(130):.2f})",
            linewidth=2.2 if s.policy == "pallet" else 1.2,
        )
    ax.plot(xs, [min(x, 100) for x in xs], color="grey", linestyle=":", linewidth=1, label="ideal")
    ax.set_xlabel("arrived GPU demand (% of cluster GPUs)")
    ax.set_ylabel("GPU allocation (%)")
    ax.set_title(f"openb {workload}: GPU allocation under the FGD arrival protocol")
    ax.set_xlim(60, 130)
    ax.set_ylim(60, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title="policy (@100% / @130%)")
    path = out_dir / f"packing-{workload}.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    path: Path,
    baseline: float | None = None,
    baseline_label: str = "",
) -> Path:
    """A bar per policy, optionally with a horizontal baseline (e.g. a lower bound)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    colors = ["#d62728" if label == "pallet" else "#1f77b4" for label in labels]
    ax.bar(labels, values, color=colors)
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="--", linewidth=1, label=baseline_label)
        ax.legend()
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_gaps(
    title: str,
    xs: Sequence[float],
    xlabel: str,
    panels: Sequence[tuple[str, dict[str, list[float | None]]]],
    path: Path,
) -> Path:
    """One panel per (y label, lines), side by side, sharing the x axis; a line skips
    its missing values. Panels after the first show differences: a dashed line marks
    zero there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(
        1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 4.5), dpi=120
    )
    for n, (ax, (ylabel, lines)) in enumerate(
        zip(list(getattr(axes, "flat", [axes])), panels, strict=False)
    ):
        for label, ys in lines.items():
            pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
        if n:
            ax.axhline(0, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
