"""The monthly digest's chart: accepted claims (£) by activity month and service, last 12 months.

A PNG drawn with matplotlib (Agg, no display). The legend sits below the plot, clear of the bars
whatever their height, and the value axis is in pounds. In the email the picture travels as a
`cid:` part; anywhere it is only looked at (a dry run, a preview) it is inlined as a data: URI.
"""
from __future__ import annotations

import base64
import io
import textwrap
from datetime import datetime

from handlers.contract.periods import LONDON, add_months, month_start
from store import reports

DPI = 200            # drawn at twice the size it is shown, so it stays sharp on high-density screens
SCALE = 2
WIDTH_IN = 6.8
COLOURS = ["#005eb8", "#ffb81c", "#009639", "#da291c", "#7c2855", "#00a499", "#425563", "#ed8b00"]


def claims_chart(conn, now: datetime, catalogue) -> bytes:
    buf = io.BytesIO()
    figure(conn, now, catalogue).savefig(buf, format="png")
    return buf.getvalue()


def figure(conn, now: datetime, catalogue):
    """The chart as a matplotlib Figure (tests measure where its legend and bars fall)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    first = add_months(month_start(now.astimezone(LONDON).date()), -11)
    months = [add_months(first, i) for i in range(12)]
    keys = [f"{m:%Y-%m}" for m in months]
    data: dict[str, list[float]] = {}
    for service, month, pence in reports.accepted_pence_by_service_month(conn, keys[0]):
        if month in keys:
            data.setdefault(service, [0.0] * 12)[keys.index(month)] = (pence or 0) / 100
    # room below the plot for one legend row per service
    fig = Figure(figsize=(WIDTH_IN, 2.5 + 0.22 * len(data)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    bottom = [0.0] * 12
    for i, (service, values) in enumerate(sorted(data.items())):
        svc = catalogue.get(service)
        name = textwrap.fill(svc.name if svc else service, 100)     # whole names: a catalogue's may be long
        ax.bar(range(12), values, bottom=bottom, label=name, color=COLOURS[i % len(COLOURS)], width=0.7)
        bottom = [a + b for a, b in zip(bottom, values)]
    ax.set_xticks(range(12), [f"{m:%b}\n{m:%Y}" if i == 0 or m.month == 1 else f"{m:%b}"
                              for i, m in enumerate(months)], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"£{v:,.0f}"))
    ax.set_ylabel("Accepted claims", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#d8dde0", linewidth=0.6)
    ax.set_axisbelow(True)
    if data:
        ax.set_ylim(0, max(bottom) * 1.08 or 1)
        fig.legend(loc="outside lower center", ncols=1, fontsize=7.5, frameon=False)
    else:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "No accepted claims in these 12 months", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="#4c6272")
    return fig


def size(png: bytes) -> tuple[int, int]:
    """The width and height to show the picture at (CSS pixels), from its PNG header."""
    return int.from_bytes(png[16:20], "big") // SCALE, int.from_bytes(png[20:24], "big") // SCALE


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
