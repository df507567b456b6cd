"""Plots of measured cases (:class:`~resnet_cli.bench.history.Point`): images/s against batch size per
variant, the latency distribution per case (box: p25..p75 and the median; whiskers: p5 and p95), and
images/s against GMACs per image. In the terminal through plotext, to SVG or PNG through matplotlib
(the ``plot`` extra). Nothing here computes a figure; points are only grouped and placed.

In the SVG every series is a group with an id: ``throughput-N`` (one per series of the first plot),
``latency-cases`` and ``macs-N``; text stays text (``svg.fonttype = none``) so labels can be searched.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from ..errors import RuntimeFailure


def series(points: Sequence) -> "OrderedDict[str, list]":
    """Points grouped into series: by variant, plus the dtype, layout, mode and input size where the file
    holds more than one of them, the optimizer (``adamw``), autocast (``bf16-amp``), compile mode
    (``compile``, ``compile-max-autotune``) and thread count (``2 threads``) where the points of one
    variant differ in them (nothing is said for an eval case's optimizer, no autocast or eager), and
    ``xN ranks`` for a data-parallel run of N ranks (its own series: x is the batch per rank, y the total
    images/s); each series sorted by batch size, series in first-seen order."""
    several = {k: len({getattr(p, k) for p in points}) > 1 for k in ("dtype", "channels_last", "input_size", "mode")}
    per_variant = {k: {v for v in {p.variant for p in points}
                       if len({getattr(p, k) for p in points if p.variant == v}) > 1}
                   for k in ("optimizer", "amp", "compile_mode", "threads")}
    groups: "OrderedDict[str, list]" = OrderedDict()
    for p in points:
        label = p.variant
        if several["dtype"]:
            label += f" {p.dtype}"
        if several["channels_last"]:
            label += " nhwc" if p.channels_last else " nchw"
        if several["mode"]:
            label += f" {p.mode}"
        if p.variant in per_variant["optimizer"] and p.optimizer:
            label += f" {p.optimizer}"
        if p.variant in per_variant["amp"] and p.amp:
            label += f" {p.amp}-amp"
        if p.variant in per_variant["compile_mode"] and p.compile_mode:
            label += " compile" + ("" if p.compile_mode == "default" else f"-{p.compile_mode}")
        if p.variant in per_variant["threads"] and p.threads is not None:
            label += f" {p.threads} thread{'s' if p.threads != 1 else ''}"
        if several["input_size"] and p.input_size:
            label += f" {p.input_size[-2]}x{p.input_size[-1]}"
        if p.world_size > 1:  # data parallel: total images/s at a batch per rank
            label += f" x{p.world_size} ranks"
        groups.setdefault(label, []).append(p)
    for label in groups:
        groups[label].sort(key=lambda p: p.batch_size)
    return groups


def _box(p) -> list[float]:
    """p5, p25, median, p75, p95 (older records without quartiles: the median stands for them)."""
    lat = p.latency_ms
    return [lat["p5"], lat.get("p25") or lat["median"], lat["median"], lat.get("p75") or lat["median"], lat["p95"]]


def _case_label(label: str, p) -> str:
    return f"{label} b{p.batch_size}"


#: One marker per series, so the series differ without colour too (ASCII ones without UTF-8).
MARKERS = ("●", "■", "▲", "◆", "○", "□", "✗", "+")
ASCII_MARKERS = ("o", "x", "+", "*", "#", "@", "%", "&")


def terminal(points: Sequence, width: int, height: int, color: bool, title: str, unicode: bool = True) -> str:
    """The three plots as text for a terminal ``width`` columns wide (plotext); each plot is followed by
    a legend line naming the series' markers (plotext's own legend box would hide points)."""
    try:
        import plotext
    except ImportError:
        raise RuntimeFailure("the terminal plot needs plotext: pip install plotext (or write a file with "
                             "-o plot.svg, which needs matplotlib)") from None
    groups = series(points)
    markers = MARKERS if unicode else ASCII_MARKERS
    marker = {label: markers[i % len(markers)] for i, label in enumerate(groups)}
    legend = "   ".join(f"{marker[label]} {label}" for label in groups)
    plotext.terminal.limit(False, False)  # the size asked for, not capped at the terminal's
    fig = plotext.figure
    out = []

    def finish(plot_title: str, xlabel: str, ylabel: str, with_legend: bool = True) -> None:
        fig.title(plot_title)
        fig.label(xlabel, axis="x")
        fig.label(ylabel, axis="y")
        out.append(fig.build().string(colorless=not color) + ("\n" + legend if with_legend else ""))

    fig.clear()
    fig.plot_size(width, height)
    for label, ps in groups.items():
        s = fig.signal([p.batch_size for p in ps], [p.images_per_sec for p in ps], marker=marker[label])
        s.lines()
        fig.draw(s)
    finish(f"{title}: images/s by batch size", "batch", "images/s")

    cases = [(_case_label(label, p), p) for label, ps in groups.items() for p in ps]
    fig.clear()
    fig.plot_size(width, max(height, 3 * len(cases) + 6))
    fig.draw(fig.box([name for name, _ in cases], [_box(p) for _, p in cases], orientation="h"))
    finish("latency, ms: box p25-p75, median, whiskers p5-p95", "ms", "", with_legend=False)

    fig.clear()
    fig.plot_size(width, height)
    for label, ps in groups.items():
        with_macs = [p for p in ps if p.gmacs is not None]
        if with_macs:
            fig.draw(fig.signal([p.gmacs for p in with_macs], [p.images_per_sec for p in with_macs],
                                marker=marker[label]))
    finish("images/s by GMACs per image (one point per case)", "GMACs per image", "images/s")
    return "\n\n".join(out)


def write_file(points: Sequence, path: str, title: str) -> None:
    """The three plots in one figure, written to ``path`` (``.svg`` or ``.png``) by matplotlib.

    Raises:
        RuntimeFailure: matplotlib is not installed, or the file cannot be written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeFailure(f"-o {path} needs matplotlib: pip install 'resnet-cli[plot]' "
                             "(or pip install matplotlib); without -o the plot is drawn in the terminal") from None
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "resnet-cli", "font.size": 9})
    groups = series(points)
    cases = [(_case_label(label, p), p) for label, ps in groups.items() for p in ps]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(8, 4 + 3.2 * 2 + 0.28 * len(cases)),
                                        gridspec_kw={"height_ratios": [3, max(2, 0.3 * len(cases)), 3]})
    fig.suptitle(title)
    for i, (label, ps) in enumerate(groups.items()):
        (line,) = ax1.plot([p.batch_size for p in ps], [p.images_per_sec for p in ps], marker="o", label=label)
        line.set_gid(f"throughput-{i}")
    ax1.set_xscale("log", base=2)
    batches = sorted({p.batch_size for p in points})
    ax1.set_xticks(batches, [str(b) for b in batches])
    ax1.minorticks_off()
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("images/s")
    ax1.set_title("throughput by batch size")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    stats = [{"label": name, "whislo": b[0], "q1": b[1], "med": b[2], "q3": b[3], "whishi": b[4], "fliers": []}
             for name, p in cases for b in [_box(p)]]
    boxes = ax2.bxp(stats, orientation="horizontal", showfliers=False) if _bxp_orientation() else \
        ax2.bxp(stats, vert=False, showfliers=False)
    for artist in boxes["boxes"]:
        artist.set_gid("latency-cases")
    ax2.set_xlabel("latency per forward pass, ms (box p25..p75, line median, whiskers p5 and p95)")
    ax2.set_title("latency distribution per case")
    ax2.grid(True, axis="x", alpha=0.3)
    for i, (label, ps) in enumerate(groups.items()):
        with_macs = [p for p in ps if p.gmacs is not None]
        dots = ax3.scatter([p.gmacs for p in with_macs], [p.images_per_sec for p in with_macs], label=label)
        dots.set_gid(f"macs-{i}")
    macs = [p.gmacs for p in points if p.gmacs]
    if macs and max(macs) > 10 * min(macs):  # a wide range of networks: log scale
        ax3.set_xscale("log")
    ax3.set_xlabel("GMACs per image (conv+linear; 1 MAC = 2 FLOPs)")
    ax3.set_ylabel("images/s")
    ax3.set_title("throughput by compute per image (one point per case)")
    ax3.grid(True, alpha=0.3)
    ax3.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, metadata={"Date": None} if path.lower().endswith(".svg") else None)
    except OSError as exc:
        raise RuntimeFailure(f"-o {path!r} cannot be written ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


def _bxp_orientation() -> bool:
    """Whether this matplotlib takes ``orientation=`` in ``bxp`` (3.10+; ``vert=`` before)."""
    import inspect

    import matplotlib.axes

    return "orientation" in inspect.signature(matplotlib.axes.Axes.bxp).parameters
