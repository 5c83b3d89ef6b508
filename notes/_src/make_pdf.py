"""Render notes/_src/15-prompt-engineering.md to notes/15-prompt-engineering.pdf.

Usage (from anywhere):
    python3 -m venv /tmp/pdfvenv && /tmp/pdfvenv/bin/pip install fpdf2
    /tmp/pdfvenv/bin/python notes/_src/make_pdf.py

Only the small Markdown subset used by the source is supported:
'#', '##', '###' headings, '- ' bullets, '1. ' numbered items and plain
paragraphs (one sentence per source line; consecutive lines are joined).
The built-in Helvetica font is used, so the source must be Latin-1 text.
"""

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
SRC = HERE / "15-prompt-engineering.md"
OUT = HERE.parent / "15-prompt-engineering.pdf"

BODY_SIZE = 10.5
LINE_H = 5.4
HEADING_SIZES = {1: 18, 2: 14, 3: 11.5}


def parse(md_text):
    """Return a list of (kind, payload) blocks."""
    blocks = []
    para = []

    def flush():
        if para:
            blocks.append(("p", " ".join(para)))
            para.clear()

    for raw in md_text.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            blocks.append(("h", (level, line[level:].strip())))
        elif line.startswith("- "):
            flush()
            blocks.append(("li", line[2:].strip()))
        elif line[:1].isdigit() and ". " in line[:4]:
            flush()
            num, text = line.split(". ", 1)
            blocks.append(("ol", (num, text.strip())))
        else:
            para.append(line)
    flush()
    return blocks


def render(blocks):
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title("Prompt engineering basics")
    pdf.set_author("Shiori sample notes")
    # fixed date so that regenerating gives the same file
    pdf.set_creation_date(datetime(2024, 7, 1, tzinfo=timezone.utc))
    pdf.set_subject("Study note: few-shot, chain-of-thought, system prompts, temperature")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    for kind, payload in blocks:
        if kind == "h":
            level, text = payload
            pdf.ln(3 if level > 1 else 0)
            pdf.set_font("Helvetica", "B", HEADING_SIZES.get(level, 11))
            pdf.multi_cell(
                width, HEADING_SIZES.get(level, 11) * 0.5, text, new_x="LMARGIN", new_y="NEXT"
            )
            pdf.ln(1.5)
        elif kind == "p":
            pdf.set_font("Helvetica", "", BODY_SIZE)
            pdf.multi_cell(width, LINE_H, payload, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif kind in ("li", "ol"):
            marker, text = ("-", payload) if kind == "li" else (payload[0] + ".", payload[1])
            pdf.set_font("Helvetica", "", BODY_SIZE)
            pdf.set_x(pdf.l_margin + 3)
            pdf.cell(6, LINE_H, marker)
            pdf.multi_cell(width - 9, LINE_H, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.8)
    return pdf


def main():
    text = SRC.read_text(encoding="utf-8")
    text.encode("latin-1")  # fail early: core fonts cannot show other characters
    pdf = render(parse(text))
    pdf.output(str(OUT))
    print(f"wrote {OUT} ({pdf.pages_count} pages)")


if __name__ == "__main__":
    main()
