"""DIR/report.html: report.json for people -- summary, bench results, per-layer table,
and PNG charts (matplotlib) in DIR/plots/: MACs and instructions or cycles per layer,
the arena plan over the op sequence, flash by layer, per-layer SQNR.

Every name from the model is HTML-escaped; the page needs no script and no network.
"""

from __future__ import annotations

import html
from pathlib import Path

from tinyq.report import short_name

PLOTS = "plots"
HTML_FILE = "report.html"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(name: str, width: int = 28) -> str:
    name = short_name(name)
    return name if len(name) <= width else name[: width - 1] + "\u2026"


def _per_layer_cost(report: dict) -> tuple[str, list[int]] | None:
    layers = report.get("bench", {}).get("per_layer")
    if not layers:
        return None
    unit = "instructions" if "instructions" in layers[0] else "cycles"
    return unit, [layer[unit] for layer in layers]


def _layer_chart(plt, report: dict, path: Path) -> None:
    ops, cost = report["ops"], _per_layer_cost(report)
    rows = 2 if cost else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows + 0.8), squeeze=False, sharex=True)
    index = range(len(ops))
    axes[0][0].bar(index, [op["macs"] for op in ops], color="#1f77b4")
    axes[0][0].set_ylabel("MACs")
    if cost:
        axes[1][0].bar(index, cost[1], color="#ff7f0e")
        axes[1][0].set_ylabel(cost[0])
    axes[-1][0].set_xticks(list(index), [f"{i} {op['type']}" for i, op in enumerate(ops)], rotation=75, fontsize=7)
    fig.suptitle("per layer")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _arena_chart(plt, report: dict, path: Path) -> None:
    mem = report["memory"]
    fig, ax = plt.subplots(figsize=(10, 4))
    colors = plt.get_cmap("tab20").colors
    for i, buf in enumerate(mem["plan"]):
        first = max(buf["first_op"], 0)
        ax.broken_barh(
            [(first - 0.4, buf["last_op"] - first + 0.8)],
            (buf["offset"], buf["bytes"]),
            facecolors=colors[i % len(colors)],
            edgecolors="black",
            linewidth=0.4,
        )
    ax.axhline(mem["arena_bytes"], color="red", linestyle="--", linewidth=1)
    ax.set_xlim(-0.8, len(report["ops"]) - 0.2)
    ax.set_ylim(0, mem["arena_bytes"] * 1.05 or 1)
    ax.set_xlabel("op")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"arena plan: {mem['arena_bytes']:,} bytes (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _flash_chart(plt, report: dict, path: Path) -> None:
    ops, mem = report["ops"], report["memory"]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.bar(range(len(ops)), [op["weights_bytes"] for op in ops], color="#2ca02c")
    ax.set_xticks(range(len(ops)), [str(i) for i in range(len(ops))], fontsize=7)
    ax.set_xlabel("op")
    ax.set_ylabel("weight bytes")
    rest = (
        ""
        if mem["flash_bytes"] is None
        else f"; firmware flash {mem['flash_bytes']:,} bytes, of which constants {mem['weights_bytes']:,}"
    )
    ax.set_title(f"flash by layer{rest}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _sqnr_chart(plt, sqnr: dict, path: Path) -> None:
    names = list(sqnr)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(range(len(names)), [sqnr[n] for n in names], marker="o", color="#9467bd")
    ax.set_xticks(range(len(names)), [_short(n, 18) for n in names], rotation=75, fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("int8 activations against float, per tensor")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _bits_curve_chart(plt, quant: dict, path: Path) -> None:
    """--bits auto's measured points: output SQNR (and accuracy) against constant bytes."""
    curve = quant["bits_curve"]
    low = sorted(row["name"] for row in quant["layer_bits"] if row["weight_bits"] < 8)
    pick = next(p for p in curve if sorted(p["low"]) == low)
    sizes = [p["constant_bytes"] for p in curve]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(sizes, [p["sqnr_db"] for p in curve], marker="o", color="#1f77b4", label="output SQNR")
    ends = {0: "all int8", len(curve) - 1: "all int4"}
    for i, label in ends.items():
        ax.annotate(label, (sizes[i], curve[i]["sqnr_db"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.plot(
        [pick["constant_bytes"]],
        [pick["sqnr_db"]],
        marker="*",
        markersize=14,
        color="#d62728",
        linestyle="",
        label="chosen",
    )
    ax.set_xlabel("constant bytes (flash)")
    ax.set_ylabel("output SQNR (dB)")
    if all(p.get("accuracy") is not None for p in curve):
        acc = ax.twinx()
        acc.plot(sizes, [100 * p["accuracy"] for p in curve], marker="s", color="#2ca02c", label="accuracy")
        acc.set_ylabel("accuracy on --data (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("--bits auto: int4 weights layer by layer, cheapest first", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _table(rows: list[list], header: list[str] | None = None) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _summary(report: dict) -> list[list]:
    mem, model = report["memory"], report["model"]
    rows = [
        ["model", model["name"]],
        ["board", report["board"]],
        ["MACs", f"{model['macs']:,}"],
        ["arena", f"{mem['arena_bytes']:,} bytes"],
        ["constants (weights, biases, tables)", f"{mem['weights_bytes']:,} bytes"],
    ]
    if mem.get("flash_bytes") is not None:
        rows += [["firmware flash", f"{mem['flash_bytes']:,} bytes"], ["firmware RAM", f"{mem['ram_bytes']:,} bytes"]]
    quant = report.get("quant", {})
    rows.append(["quantization", f"{quant.get('bits', '?')}, {','.join(quant.get('algo', []))}"])
    return rows


def _bench(bench: dict) -> list[list]:
    keys = [
        ("target", "target"),
        ("runs", "runs"),
        ("instructions", "instructions / inference"),
        ("instructions_per_mac", "instructions / MAC"),
        ("cycles", "cycles / inference"),
        ("cycles_per_mac", "cycles / MAC"),
        ("latency_ms", "latency (ms)"),
        ("energy_uj", "energy (uJ)"),
        ("bit_exact", "bit-exact with the integer reference"),
    ]
    return [
        [
            label,
            f"{bench[k]:,.3f}".rstrip("0").rstrip(".")
            if isinstance(bench[k], float)
            else f"{bench[k]:,}"
            if isinstance(bench[k], int) and not isinstance(bench[k], bool)
            else str(bench[k]).lower(),
        ]
        for k, label in keys
        if k in bench
    ]


def write_html(build_dir: Path, report: dict) -> Path:
    """Render DIR/report.html and its charts from a report.json dict."""
    plt = _pyplot()
    plots = build_dir / PLOTS
    plots.mkdir(exist_ok=True)
    charts = [
        ("layers.png", _layer_chart, "MACs and measured cost per layer"),
        ("arena.png", _arena_chart, "the memory plan: each buffer's bytes over the ops it lives through"),
        ("flash.png", _flash_chart, "weight bytes by layer"),
    ]
    sqnr = report.get("quant", {}).get("sqnr_db")
    for name, draw, _ in charts:
        draw(plt, report, plots / name)
    if sqnr:
        _sqnr_chart(plt, sqnr, plots / "sqnr.png")
        charts.append(("sqnr.png", None, "per-tensor SQNR of the int8 activations"))
    if report.get("quant", {}).get("bits_curve"):
        _bits_curve_chart(plt, report["quant"], plots / "bits.png")
        charts.append(("bits.png", None, "--bits auto: output SQNR against constant bytes, the chosen point starred"))
    cost = _per_layer_cost(report)
    total = sum(cost[1]) if cost else 0
    layer_rows = [
        [i, _short(op["name"]), op["type"], op.get("kernel", ""), f"{op['macs']:,}", f"{op['weights_bytes']:,}"]
        + ([f"{cost[1][i]:,}", f"{100 * cost[1][i] / (total or 1):.1f}%"] if cost else [])
        for i, op in enumerate(report["ops"])
    ]
    header = ["#", "layer", "op", "kernel", "MACs", "weight bytes"] + ([cost[0], "share"] if cost else [])
    figures = "".join(
        f'<figure><img src="{PLOTS}/{name}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, _, caption in charts
    )
    bench = report.get("bench")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tinyq report: {html.escape(report["model"]["name"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}figure{{margin:1em 0}}img{{max-width:100%}}</style>
</head><body>
<h1>tinyq report: {html.escape(report["model"]["name"])}</h1>
{_table(_summary(report))}
<h2>bench</h2>
{_table(_bench(bench)) if bench else "<p>not run yet: <code>tinyq bench</code> adds the results here</p>"}
<h2>charts</h2>
{figures}
<h2>layers</h2>
{_table(layer_rows, header)}
</body></html>
"""
    path = build_dir / HTML_FILE
    path.write_text(page)
    return path
