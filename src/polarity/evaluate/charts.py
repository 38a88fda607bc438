"""The report's charts as PNG bytes (matplotlib, headless)."""

from __future__ import annotations

import io

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(5, 4), dpi=100)


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def confusion_matrix(metrics: dict, title: str) -> bytes:
    plt, (fig, ax) = _figure()
    cm = np.asarray(metrics["confusion_matrix"]["matrix"])
    labels = metrics["confusion_matrix"]["labels"]
    ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=14)
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"Confusion matrix: {title}")
    return _png(plt, fig)


def reliability_diagram(metrics: dict, title: str) -> bytes:
    plt, (fig, ax) = _figure()
    rows = metrics["calibration"]["diagram"]
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o-",
            label=f"model (ECE {metrics['calibration']['ece']:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0.45, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    ax.set_title(f"Reliability: {title}")
    return _png(plt, fig)


def confidence_histogram(confidence: list[float], correct: list[bool], title: str) -> bytes:
    plt, (fig, ax) = _figure()
    c, ok = np.asarray(confidence), np.asarray(correct)
    bins = np.linspace(0.5, 1.0, 21)
    ax.hist([c[ok], c[~ok]], bins=bins, stacked=True, label=["correct", "wrong"],
            color=["#4c9a2a", "#c0392b"])
    ax.set_xlabel("confidence")
    ax.set_ylabel("texts")
    ax.legend()
    ax.set_title(f"Confidence: {title}")
    return _png(plt, fig)


def latency_histogram(latencies_ms: list[float], title: str, what: str) -> bytes:
    plt, (fig, ax) = _figure()
    ax.hist(latencies_ms, bins=30, color="#2c7fb8")
    ax.set_xlabel(f"milliseconds ({what})")
    ax.set_ylabel("texts")
    ax.set_title(f"Latency: {title}")
    return _png(plt, fig)
