"""The digest as the contract team sees it: the daily and the monthly HTML, from a real SQLite
file filled through the pipeline and printed by the real `lesbot digest --dry-run`, drawn by
headless Chromium. The chart must really render (an inline data: PNG, not a cid: link with
nothing attached), its legend must sit clear of the bars, and "Needs a human" must be there."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from handlers.clock import chart
from handlers.contract.periods import LONDON, add_months, month_start
from conftest import Lesbot, at, make_msg, run_cli

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()), None)
TEAM = "contract.team@nhs.net"
PRIYA = "priya.raghunathan3@nhs.net"          # Meresfield, Z98101: denosumab and MSK
KETTLE = "kettlebrook.hc@nhs.net"             # Kettlebrook, Z98103: denosumab and MSK
HIGHMERE = "joanne.ferris2@nhs.net"           # Highmere, Z98104: denosumab
SERIES = [(0x00, 0x5e, 0xb8), (0xff, 0xb8, 0x1c)]   # the chart's first two bar colours (bot/chart.py)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture(scope="module")
def year_of_claims(tmp_path_factory):
    """A year of claims from three practices (so the chart has two services stacked), a
    question, and mail from outside the directory. The digest windows are judged by when lesbot
    processed the mail, so everything is dated back from today and the digest asked for now."""
    home = tmp_path_factory.mktemp("render") / "var"
    this_month = month_start(datetime.now(LONDON).date())
    b = Lesbot(home, contract_team=TEAM)
    try:
        for i in range(11):
            month = add_months(this_month, i - 11)
            received = add_months(month, 1)
            for sender, code, lines in (
                    (PRIYA, "Z98101",
                     f"Denosumab injections: {4 + i}\nMSK consultations, no injection given: {1 + i % 3}"),
                    (KETTLE, "Z98103", f"Denosumab injections: {2 + i % 4}\nMSK consultations, no injection given: 2"),
                    (HIGHMERE, "Z98104", f"Denosumab injections: {3 + i % 5}")):
                r = b.ingest(make_msg(sender=sender, subject="LES claim",
                                      body=f"Practice: {code}\nMonth: {month:%B %Y}\n{lines}\n"),
                             received_at=at(received.year, received.month, 2, 10))
                assert r["outcome"] == "accepted", (month, code, r["errors"])
        b.ingest(make_msg(sender=KETTLE, body="Hello, how do we claim for a patient seen twice in a month?"))
        b.ingest("16-unknown-sender-non-nhs.eml")
    finally:
        b.close()
    return home


def _now() -> str:
    return (datetime.now(LONDON) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S")


def _digest_html(home, period: str, now: str) -> str:
    html = run_cli(home, "digest", "--period", period, "--dry-run", "--format", "html", "--now", now,
                   env_extra={"LESBOT_CONTRACT_TEAM": TEAM}).stdout
    assert html.startswith("<!DOCTYPE html>")
    return html


def _screenshot(html: str, out_dir: Path, name: str) -> Path:
    page = out_dir / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    shot = out_dir / f"{name}.png"
    profile = tempfile.mkdtemp(prefix="lesbot-chromium-")
    try:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1000,1400",
                        "--hide-scrollbars", page.as_uri()],
                       capture_output=True, timeout=90, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.exists() and shot.stat().st_size > 0, "Chromium wrote no screenshot"
    return shot


def _near(c, ref, tol=12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(c, ref))


def _not_blank(img) -> None:
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours and len(colours) > 5, "the page is blank"
    # something other than the white page: the text and tables
    dark = sum(n for n, c in colours if sum(c[:3]) < 200)
    assert dark > 2000, "no text drawn"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_monthly_digest_renders_with_its_chart(year_of_claims, tmp_path):
    from PIL import Image
    html = _digest_html(year_of_claims, "month", _now())
    assert "Needs a human" in html and "cid:" not in html
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"[^>]*width="(\d+)" height="(\d+)"', html)
    assert len(imgs) == 1, "the chart is not inlined as a data: PNG"
    png = base64.b64decode(imgs[0][0])
    w, h = _png_size(png)
    assert 800 <= w <= 2000 and 300 <= h <= 1600, (w, h)
    assert (int(imgs[0][1]), int(imgs[0][2])) == chart.size(png)
    assert "question about claiming" in html and "sender not in the directory" in html
    assert "LES-DRYRUN" not in html and "keep the reference" not in html

    shot = _screenshot(html, tmp_path, "monthly")
    img = Image.open(shot).convert("RGB")
    assert img.size == (1000, 1400)
    _not_blank(img)
    # the bars, found by their colours: only a chart that was drawn has them
    px = img.load()
    hits = {i: [] for i in range(len(SERIES))}
    for y in range(0, img.height, 2):
        for x in range(0, img.width, 2):
            for i, ref in enumerate(SERIES):
                if _near(px[x, y], ref):
                    hits[i].append((x, y))
    amber = hits[1]
    assert len(amber) > 200, "the chart's bars are not on the page"
    assert len(hits[0]) > 200, "the first service's bars are not on the page"
    ys = [y for _, y in amber]
    box = (max(0, min(x for x, _ in amber) - 60), max(0, min(ys) - 40),
           min(img.width, max(x for x, _ in amber) + 60), min(img.height, max(ys) + 80))
    assert box[2] - box[0] > 300, "the bars span too little of the page"
    area = img.crop(box)
    distinct = len(area.getcolors(maxcolors=1 << 20) or [])
    assert distinct >= 20, f"only {distinct} colours where the chart should be"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_daily_digest_renders_with_needs_a_human(year_of_claims, tmp_path):
    from PIL import Image
    html = _digest_html(year_of_claims, "day", _now())
    assert "Needs a human" in html and "<img" not in html        # the chart is monthly only
    assert "question about claiming" in html and "Kettlebrook Health Centre (Z98103)" in html
    assert "how do we claim" not in html.lower()                 # never the text itself
    img = Image.open(_screenshot(html, tmp_path, "daily")).convert("RGB")
    _not_blank(img)


def test_the_legend_sits_clear_of_the_bars_and_the_axis_is_in_pounds(year_of_claims):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bot.settings import config
    from conftest import INBOX
    from store.db import open_db
    settings = config.load(home=year_of_claims, inbox=INBOX)
    conn = open_db(settings.db_path)
    try:
        fig = chart.figure(conn, datetime.now(timezone.utc), settings.catalogue)
    finally:
        conn.close()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    bars = [p.get_window_extent(renderer) for p in ax.patches if p.get_height() > 0]
    assert len(bars) >= 20, "two services over (nearly) 12 months"
    legend = fig.legends[0] if fig.legends else ax.get_legend()
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(b) for b in bars), "the legend covers a bar"
    assert box.y1 <= ax.get_window_extent(renderer).y0 + 1 or box.x0 >= ax.get_window_extent(renderer).x1 - 1
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(t.startswith("£") for t in labels), labels
    # the figure is fully inside its canvas: nothing clipped at the edges
    fw, fh = fig.bbox.width, fig.bbox.height
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fw and box.y1 <= fh
