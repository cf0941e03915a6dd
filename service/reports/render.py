"""The monthly report as a document: JSON, CSV, xlsx (openpyxl), HTML and PDF (reportlab),
with charts drawn by matplotlib.  Japanese by default, English on request.

Japanese text needs a Japanese font: IPAexGothic (Debian ``fonts-ipaexfont-gothic``), or any
TrueType font with Japanese glyphs found by matplotlib's font manager, or the file named by
``report_font`` in the configuration.  reportlab embeds a subset of it in the PDF, with its
Unicode map, so the text can be searched and copied.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from service.ledger.model import OUTCOMES
from service.reports.labels import label

FONT_NAMES = ("IPAexGothic", "IPAGothic", "IPAPGothic", "TakaoGothic", "VL Gothic",
              "Noto Sans CJK JP")


class RenderError(RuntimeError):
    """A document cannot be rendered here (e.g. no Japanese font installed)."""


@lru_cache(maxsize=4)
def japanese_font(configured: str = "") -> Path:
    """A TrueType (.ttf) font file with Japanese glyphs: the configured one, else the first
    of :data:`FONT_NAMES` that matplotlib's font manager finds."""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise RenderError(f"report_font {configured!r} is not a file")
        return path
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        if entry.name in FONT_NAMES and entry.fname.lower().endswith(".ttf"):
            return Path(entry.fname)
    raise RenderError("no Japanese TrueType font found: install fonts-ipaexfont-gothic "
                      "(Debian) or set report_font to a .ttf file")


# -- flat figures (CSV, xlsx summary, HTML and PDF tables) --------------------------------

def figure_rows(report: dict[str, Any], lang: str = "ja") -> list[tuple[str, str, Any]]:
    """(section, label, value) for every figure of the report, in reading order."""
    t = lambda key: label(key, lang)  # noqa: E731
    rows: list[tuple[str, str, Any]] = [
        (t("section_calls"), t("calls"), report["calls"]),
        (t("section_calls"), t("in_progress"), report["in_progress"]),
    ]
    rows += [(t("section_outcomes"), t(f"outcome_{o}"), report["outcomes"][o]) for o in OUTCOMES]
    rows += [(t("section_outcomes"), t("forwarded_answered"), report["forwarded_answered"]),
             (t("section_outcomes"), t("forwarded_unanswered"), report["forwarded_unanswered"])]
    missed = report["missed"]
    rows += [(t("section_missed"), t("missed_total"), missed["total"]),
             (t("section_missed"), t("missed_excluding_short"), missed["excluding_short_abandon"]),
             (t("section_missed"), t("outcome_short_abandon"), missed["short_abandon"])]
    rows += [(t("section_missed"), t(f"outcome_{reason}"), n)
             for reason, n in missed["by_reason"].items()]
    rows.append((t("section_missed"), t("voicemails"), report["voicemails"]))
    sl = report["service_level"]
    rows += [(t("section_service"), t("sl_threshold"), sl["threshold_s"]),
             (t("section_service"), t("sl_answered_within"), sl["answered_within"]),
             (t("section_service"), t("sl_offered"), sl["offered"]),
             (t("section_service"), t("sl_percent"), sl["percent"]),
             (t("section_service"), t("wait_avg"), report["wait_avg_s"]),
             (t("section_service"), t("wait_max"), report["wait_max_s"]),
             (t("section_service"), t("talk_avg"), report["talk_avg_s"])]
    esc = report["escalations"]
    rows += [(t("section_escalations"), t("escalations_total"), esc["total"]),
             (t("section_escalations"), t("repeat_callers"), esc["repeat_callers"])]
    rows += [(t("section_escalations"), t(f"reason_{r}"), n) for r, n in esc["operator"].items()]
    rows += [(t("section_escalations"), t(f"reason_{r}"), n) for r, n in esc["other"].items()]
    msg = report["messages"]
    rows += [(t("section_messages"), t("messages_taken"), msg["taken"]),
             (t("section_messages"), t("messages_delivered"), msg["delivered"]),
             (t("section_messages"), t("messages_failed"), msg["delivery_failed"])]
    rows += [(t("section_messages"), t(f"disposition_{d}"), n)
             for d, n in msg["by_disposition"].items()]
    rows += [(t("section_callbacks"), t(f"cb_{k}"), v) for k, v in report["callbacks"].items()]
    out = report["outbound"]
    rows += [(t("section_outbound"), t(f"outbound_{k}"), v) for k, v in out.items()]
    held = report["handraises"]
    rows += [(t("section_handraises"), t(f"handraise_{k}"), v) for k, v in held.items()]
    rows.append((t("section_complaints"), t("complaints"), report["complaints"]))
    plan = report["plan"]
    rows += [(t("section_plan"), t("plan_calls"), plan["plan_calls"]),
             (t("section_plan"), t("plan_counts"), t(f"counts_{plan['counts']}")
              + (t("counts_plus_outbound") if plan["counts_outbound"] else "")),
             (t("section_plan"), t("counted_calls"), plan["counted_calls"]),
             (t("section_plan"), t("counted_outbound_calls"), plan["counted_outbound_calls"]),
             (t("section_plan"), t("overage_calls"), plan["overage_calls"]),
             (t("section_plan"), t("overage_price"), plan["overage_price"]),
             (t("section_plan"), t("overage_amount"), plan["overage_amount"])]
    return rows


def to_json(report: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def to_csv(report: dict[str, Any], lang: str = "ja") -> bytes:
    """key,section,label,value: one line per figure, then the days and hours.  UTF-8 with a
    BOM so spreadsheet programs read the Japanese labels."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "figure", "value"])
    writer.writerow([label("section_report", lang), label("client", lang), report["client"]])
    writer.writerow([label("section_report", lang), label("month", lang), report["month"]])
    for section, name, value in figure_rows(report, lang):
        writer.writerow([section, name, "" if value is None else value])
    for day in report["by_day"]:
        writer.writerow([label("section_by_day", lang), day["date"], day["calls"]])
    for hour in report["by_hour"]:
        writer.writerow([label("section_by_hour", lang), f"{hour['hour']:02d}", hour["calls"]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# -- charts ---------------------------------------------------------------------------------

def chart_png(report: dict[str, Any], which: str, lang: str = "ja", font: str = "",
              title: bool = True) -> bytes:
    """Calls per day (``by_day``) or per hour of day (``by_hour``), answered and missed
    stacked, as a PNG (``title``: its name drawn above it, for a chart shown alone)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    prop = font_manager.FontProperties(fname=str(japanese_font(font)))
    if which == "by_day":
        keys = [d["date"][-2:] for d in report["by_day"]]
        rows = report["by_day"]
        name, xlabel = label("chart_by_day", lang), label("day", lang)
    elif which == "by_hour":
        keys = [f"{h['hour']}" for h in report["by_hour"]]
        rows = report["by_hour"]
        name, xlabel = label("chart_by_hour", lang), label("hour", lang)
    else:
        raise RenderError(f"no chart {which!r} (by_day, by_hour)")
    answered = [r["answered"] for r in rows]
    missed = [r["missed"] for r in rows]
    other = [r["calls"] - r["answered"] - r["missed"] for r in rows]
    figure = Figure(figsize=(7.2, 2.6), dpi=150)
    axes = figure.add_subplot()
    axes.bar(keys, answered, color="#3b7dd8", label=label("answered", lang))
    axes.bar(keys, missed, bottom=answered, color="#e0803a", label=label("missed", lang))
    axes.bar(keys, other, bottom=[a + m for a, m in zip(answered, missed, strict=True)],
             color="#b0b0b0", label=label("other", lang))
    if title:
        axes.set_title(name, fontproperties=prop, fontsize=10)
    axes.set_xlabel(xlabel, fontproperties=prop, fontsize=8)
    axes.set_ylabel(label("calls", lang), fontproperties=prop, fontsize=8)
    axes.tick_params(labelsize=6)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0, top=max(1, max(r["calls"] for r in rows) * 1.1))
    axes.legend(prop=prop, fontsize=7, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body { font-family: "IPAexGothic", "Noto Sans CJK JP", sans-serif; color: #222;
       max-width: 60em; margin: 2em auto; padding: 0 1em; }
header { border-bottom: 2px solid #3b7dd8; margin-bottom: 1em; }
h1 { font-size: 1.4em; margin: 0.2em 0; } h2 { font-size: 1.1em; margin-top: 1.5em; }
.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.definition { font-size: 0.85em; color: #444; }
img { max-width: 100%; }
"""


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def to_html(report: dict[str, Any], lang: str = "ja", company: str = "",
            font: str = "", charts: bool = True) -> bytes:
    """A standalone HTML document (charts inlined as PNG data URIs)."""
    e = html.escape
    name = report["client_name_ja"] if lang == "ja" else report["client_name_en"]
    parts = [f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>",
             f"<title>{e(label('title', lang))} {e(report['month'])} {e(name)}</title>",
             f"<style>{_CSS}</style></head><body><header>",
             f"<div class='meta'>{e(company)}</div>",
             f"<h1>{e(label('title', lang))} — {e(_month_text(report['month'], lang))}</h1>",
             f"<div>{e(name)} {e(label('honorific', lang))} ({e(report['client'])})</div>",
             f"<div class='meta'>{e(_period_text(report, lang))}</div></header>"]
    section = None
    for sec, name_, value in figure_rows(report, lang):
        if sec != section:
            if section is not None:
                parts.append("</table>")
            parts.append(f"<h2>{e(sec)}</h2><table>")
            section = sec
        parts.append(f"<tr><th>{e(name_)}</th><td class='n'>{e(_value(value))}</td></tr>")
    parts.append("</table>")
    parts.append(f"<p class='definition'>{e(report['service_level']['definition'][lang])}</p>")
    if charts:
        for which in ("by_day", "by_hour"):
            data = base64.b64encode(chart_png(report, which, lang, font, title=False)).decode()
            parts.append(f"<h2>{e(label('chart_' + which, lang))}</h2>"
                         f"<img alt='{e(label('chart_' + which, lang))}' "
                         f"src='data:image/png;base64,{data}'>")
    parts.append(f"<p class='meta'>{e(label('generated', lang))}: "
                 f"{e(_local(report['generated_at'], report['timezone']))}</p></body></html>")
    return "".join(parts).encode("utf-8")


def _local(iso: str, timezone: str) -> str:
    """An ISO time as the client reads it: ``2026-12-01 09:00 (Asia/Tokyo)``."""
    from zoneinfo import ZoneInfo

    return f"{datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M} " \
        f"({timezone})"


def _period_text(report: dict[str, Any], lang: str) -> str:
    """``対象期間: 2026-11-01 00:00 – 2026-12-01 00:00 (Asia/Tokyo)``; the end is exclusive."""
    start = datetime.fromisoformat(report["period_start"])
    end = datetime.fromisoformat(report["period_end"])
    return (f"{label('period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} "
            f"({report['timezone']})")


def _month_text(month: str, lang: str) -> str:
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月" if lang == "ja" else \
        date(int(year), int(mon), 1).strftime("%B %Y")


# -- PDF --------------------------------------------------------------------------------------

def to_pdf(report: dict[str, Any], lang: str = "ja", company: str = "",
           font: str = "") -> bytes:
    """An A4 PDF: header with the answering company's and the client's names, every figure,
    the service-level definition and the two charts."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    font_path = japanese_font(font)
    if "OrikaeshiJP" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("OrikaeshiJP", str(font_path)))
    base = ParagraphStyle("base", fontName="OrikaeshiJP", fontSize=9, leading=13,
                          wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=11,
                           textColor=colors.HexColor("#444444"))
    title = ParagraphStyle("title", parent=base, fontSize=16, leading=22)
    heading = ParagraphStyle("heading", parent=base, fontSize=11, leading=16, spaceBefore=6)
    e = html.escape
    name = report["client_name_ja"] if lang == "ja" else report["client_name_en"]
    story: list[Any] = [
        Paragraph(e(company), small),
        Paragraph(f"{e(label('title', lang))} — {e(_month_text(report['month'], lang))}", title),
        Paragraph(f"{e(name)} {e(label('honorific', lang))} ({e(report['client'])})", heading),
        Paragraph(e(_period_text(report, lang)), small),
        Spacer(1, 4 * mm)]
    rows: list[list[Any]] = []
    styles: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "OrikaeshiJP", 8.5),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
    section = None
    for sec, name_, value in figure_rows(report, lang):
        if sec != section:
            styles.append(("BACKGROUND", (0, len(rows)), (-1, len(rows)),
                           colors.HexColor("#e8f0fb")))
            rows.append([sec, ""])
            section = sec
        rows.append([name_, _value(value)])
    left, right = rows[: (len(rows) + 1) // 2], rows[(len(rows) + 1) // 2:]
    story.append(Table([[_table(left, styles, Table, TableStyle),
                         _table(right, styles, Table, TableStyle, offset=len(left))]],
                       colWidths=[90 * mm, 90 * mm],
                       style=[("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph(e(report["service_level"]["definition"][lang]), small))
    for which in ("by_day", "by_hour"):
        png = chart_png(report, which, lang, font, title=False)
        story.append(KeepTogether([Paragraph(e(label("chart_" + which, lang)), heading),
                                   Image(io.BytesIO(png), width=170 * mm, height=61 * mm)]))
    story.append(Paragraph(f"{e(label('generated', lang))}: "
                           f"{e(_local(report['generated_at'], report['timezone']))}", small))
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=12 * mm,
        bottomMargin=12 * mm, title=f"{label('title', lang)} {report['month']} {name}",
        author=company, lang=lang)
    document.build(story)
    return out.getvalue()


def _table(rows: list[list[Any]], styles: list[tuple[Any, ...]], table: Any,
           table_style: Any, offset: int = 0) -> Any:
    """One column of the figures table, with the style commands of its rows."""
    mine = []
    for command in styles:
        start, end = command[1], command[2]
        if (start == (0, 0) and end == (-1, -1)) or start[0] == 1:
            mine.append(command)
            continue
        row = start[1] - offset
        if 0 <= row < len(rows):
            mine.append((command[0], (start[0], row), (end[0], row), *command[3:]))
    return table(rows, colWidths=[150, 90], style=table_style(mine))


# -- xlsx -------------------------------------------------------------------------------------

def to_xlsx(report: dict[str, Any], missed_calls: list[dict[str, Any]],
            lang: str = "ja", company: str = "") -> bytes:
    """A workbook: the figures (numbers as numbers), the days (dates as dates), the hours,
    and the month's missed calls (phone numbers as text cells, written as they are: no
    ``'`` prefix; caller-controlled text never becomes a formula)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = label("sheet_summary", lang)
    bold = Font(bold=True)
    _row(sheet, [company])
    _row(sheet, [label("title", lang), report["month"]])
    _row(sheet, [label("client", lang), report["client"],
                 report["client_name_ja"] if lang == "ja" else report["client_name_en"]])
    _row(sheet, [label("period", lang), report["period_start"], report["period_end"],
                 report["timezone"]])
    _row(sheet, [])
    for cell in _row(sheet, [label("section", lang), label("figure", lang),
                             label("value", lang)]):
        cell.font = bold
    for section, name, value in figure_rows(report, lang):
        _row(sheet, [section, name, value])
    _row(sheet, [])
    _row(sheet, [report["service_level"]["definition"][lang]])
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 36
    sheet.column_dimensions["C"].width = 14

    for section, key, rows in (("section_by_day", "day", report["by_day"]),
                               ("section_by_hour", "hour", report["by_hour"])):
        counts = book.create_sheet(label(section, lang))
        for cell in _row(counts, [label(k, lang) for k in (key, "calls", "answered", "missed")]):
            cell.font = bold
        for row in rows:
            first = date.fromisoformat(row["date"]) if key == "day" else row["hour"]
            cells = _row(counts, [first, row["calls"], row["answered"], row["missed"]])
            if key == "day":
                cells[0].number_format = "yyyy-mm-dd"
        counts.column_dimensions["A"].width = 12

    missed = book.create_sheet(label("sheet_missed", lang))
    columns = ("started_at", "caller_number", "caller_e164", "caller_name", "outcome",
               "wait_s", "voicemail_left", "callback_state")
    for cell in _row(missed, [label(f"col_{c}", lang) for c in columns]):
        cell.font = bold
    for call in missed_calls:
        values = [call[c] for c in columns]
        values[0] = values[0].replace(tzinfo=None) if values[0] is not None else None
        values[4] = label(f"outcome_{values[4]}", lang) if values[4] else None
        values[7] = label(f"state_{values[7]}", lang) if values[7] else None
        cells = _row(missed, values)
        cells[0].number_format = "yyyy-mm-dd hh:mm:ss"
    for column, width in zip("ABCDEFGH", (20, 16, 16, 24, 16, 8, 8, 16), strict=True):
        missed.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _row(sheet: Any, values: list[Any]) -> list[Any]:
    """Append a row; strings stay strings (openpyxl would take ``=...`` as a formula)."""
    sheet.append([None] * len(values)) if values else sheet.append([])
    cells = []
    for column, value in enumerate(values, start=1):
        cell = sheet.cell(row=sheet.max_row, column=column)
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        cell.value = value
        if isinstance(value, str):
            cell.data_type = "s"
        cells.append(cell)
    return cells
