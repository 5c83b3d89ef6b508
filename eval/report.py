"""summary.json and an HTML report a person would rather look at than read JSON: headline
numbers against the thresholds, score distributions and per-category/per-language bars (inline
SVG, no network), and the worst answers with their sources."""

from __future__ import annotations

import html
import json
import math
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import percent
from rag.body import shown_passages

# summary path → (label, direction): thresholds.toml names the same paths
HEADLINES: dict[str, tuple[str, str]] = {
    "hallucination.rate": ("hallucination rate", "max"),
    "selective.coverage": ("coverage (answered / answerable)", "min"),
    "selective.selective_accuracy": ("selective accuracy (correct / answered)", "min"),
    "abstention.recall_unanswerable": ("abstention recall (unanswerable)", "min"),
    "abstention.answered_precision": ("answered precision (answerable)", "min"),
    "citations.marker_validity": ("citation markers valid", "min"),
    "citations.cited_sentence_support": ("cited sentences supported", "min"),
    "retrieval.hit_at_5": ("retrieval hit@5", "min"),
    "retrieval.mrr_at_10": ("retrieval MRR@10", "min"),
    "retrieval.ndcg_at_10": ("retrieval nDCG@10", "min"),
    "answers.contains": ("answer contains the reference", "min"),
    "answers.f1": ("answer token F1", "min"),
    "judge.faithfulness.mean": ("ragas faithfulness", "min"),
    "judge.answer_relevancy.mean": ("ragas answer relevancy", "min"),
    "judge.context_precision.mean": ("ragas context precision", "min"),
    "judge.context_recall.mean": ("ragas context recall", "min"),
}


def lookup(summary: dict[str, Any], path: str) -> float:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return float("nan")
        node = node[part]
    return float(node) if isinstance(node, int | float) else float("nan")


def load_thresholds(path: Path) -> dict[str, float]:
    """``[min]`` and ``[max]`` tables of summary paths, e.g. ``"retrieval.hit_at_5" = 0.9``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = {f"min:{k}": float(v) for k, v in data.get("min", {}).items()}
    out.update({f"max:{k}": float(v) for k, v in data.get("max", {}).items()})
    return out


def check(summary: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """The thresholds this run misses (a metric that could not be computed misses too)."""
    failures = []
    for key, limit in thresholds.items():
        kind, path = key.split(":", 1)
        value = lookup(summary, path)
        if math.isnan(value):
            failures.append(f"{path}: not measured in this run (threshold {limit:g})")
        elif (kind == "min" and value < limit) or (kind == "max" and value > limit):
            word = "below" if kind == "min" else "above"
            failures.append(f"{path} = {value:.3f}, {word} the threshold {limit:g}")
    return failures


def _svg_bars(rows: Sequence[tuple[str, float]], width: int = 420) -> str:
    """Horizontal bars for values in [0, 1]."""
    height = 22 * len(rows) + 8
    parts = [f'<svg width="{width + 190}" height="{height}" role="img">']
    for i, (label, value) in enumerate(rows):
        y = 4 + 22 * i
        w = 0 if math.isnan(value) else max(1, int(width * value))
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="150" y="{y}" width="{w}" height="16" fill="#4a7bb7"/>'
            f'<text x="{155 + w}" y="{y + 13}" font-size="11">{percent(value)}</text>'
        )
    return "".join(parts) + "</svg>"


# the gates CI applies to the bundled golden set (`make eval`)
THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"

OUTCOME_LABELS = {
    "correct": "correct",
    "wrong": "wrong (answerable, answered wrongly)",
    "answered_unanswerable": "answered although unanswerable",
    "false_abstention": "false abstention (answerable, refused)",
    "right_abstention": "right abstention",
}


def _outcome_table(summary: dict[str, Any]) -> str:
    """Outcome counts, overall and per category."""
    selective = summary.get("selective")
    if not selective or not summary.get("answered_questions"):
        return ""
    cats = summary.get("by_category", {})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cats)
    rows = []
    for key, label in OUTCOME_LABELS.items():
        cells = "".join(f"<td>{v.get('outcomes', {}).get(key, 0)}</td>" for v in cats.values())
        rows.append(f"<tr><td>{label}</td><td><b>{selective['counts'][key]}</b></td>{cells}</tr>")
    hall = "".join(
        f"<td>{percent(v.get('hallucination', float('nan')))}</td>" for v in cats.values()
    )
    rows.append(
        f"<tr><td>hallucination rate</td><td><b>{percent(summary['hallucination']['rate'])}"
        f"</b></td>{hall}</tr>"
    )
    return (
        "<h2>Outcomes</h2><table><tr><th>outcome</th><th>all</th>"
        f"{head}</tr>{''.join(rows)}</table>"
    )


def _svg_curves(
    curves: dict[str, dict[str, Any]], point: dict[str, float], width: int = 460, height: int = 260
) -> str:
    """Risk (y, 0..max) against coverage (x, 0..1), one polyline per signal, the run as a dot."""
    colours = ["#4a7bb7", "#d1495b", "#66a182", "#edae49", "#8d6a9f", "#00798c", "#30343f"]
    top = max([r for c in curves.values() for _, r, _ in c["points"]] + [point["risk"], 0.05])
    top = min(1.0, top if top == top else 1.0)
    x0, y0, w, h = 40, 10, width - 60, height - 40

    def xy(cov: float, risk: float) -> str:
        return f"{x0 + w * cov:.1f},{y0 + h - h * (risk / top):.1f}"

    parts = [
        f'<svg width="{width + 240}" height="{height}" role="img">',
        f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
        f'<text x="{x0}" y="{height - 5}" font-size="11">coverage (answered / all '
        f"questions) 0 → 1</text>",
        f'<text x="0" y="{y0 + 10}" font-size="11">{top:.2f}</text>',
        f'<text x="0" y="{y0 + h}" font-size="11">0</text>',
    ]
    for i, (name, curve) in enumerate(sorted(curves.items())):
        colour = colours[i % len(colours)]
        pts = " ".join(xy(c, r) for c, r, _ in curve["points"])
        if pts:
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{width - 10}" y="{y0 + 14 + 16 * i}" font-size="11" fill="{colour}">'
            f"{html.escape(name)} (AURC {curve['aurc']:.3f})</text>"
        )
    if point["coverage"] == point["coverage"] and point["risk"] == point["risk"]:
        cx, cy = xy(point["coverage"], point["risk"]).split(",")
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="4" fill="#000"/>')
    return "".join(parts) + "</svg>"


def _risk_coverage_section(summary: dict[str, Any]) -> str:
    rc = summary.get("risk_coverage")
    if not rc or not rc.get("curves"):
        return ""
    point = rc["operating_point"]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{c['aurc']:.3f}</td>"
        f"<td>{c.get('auroc', float('nan')):.3f}</td>"
        f"<td>{percent(c['max_coverage'])}</td></tr>"
        for name, c in sorted(rc["curves"].items(), key=lambda kv: kv[1]["aurc"])
    )
    return (
        "<h2>Risk–coverage</h2>"
        f"<p>For each decision signal: answering only the questions whose signal is at least a "
        f"threshold, over the {rc['candidates']} questions the model answered (shown or "
        f"withdrawn by a check). Risk = wrong or unanswerable among those answered; the dot is "
        f"this run (coverage {percent(point['coverage'])}, risk {percent(point['risk'])}). "
        "Lower AURC is better; AUROC: how often a right draft outranks a wrong one.</p>"
        + _svg_curves(rc["curves"], point)
        + f"<table><tr><th>signal</th><th>AURC</th><th>AUROC</th><th>max coverage</th></tr>"
        f"{rows}</table>"
    )


def _svg_histogram(values: Sequence[float], bins: int = 10, width: int = 420) -> str:
    counts = [0] * bins
    for v in values:
        if not math.isnan(v):
            counts[min(bins - 1, int(v * bins))] += 1
    top = max(counts) or 1
    parts = [f'<svg width="{width + 20}" height="140" role="img">']
    bw = width // bins
    for i, c in enumerate(counts):
        h = int(100 * c / top)
        x = 10 + i * bw
        parts.append(
            f'<rect x="{x}" y="{110 - h}" width="{bw - 2}" height="{h}" fill="#7aa974"/>'
            f'<text x="{x}" y="125" font-size="10">{i / bins:.1f}</text>'
            f'<text x="{x}" y="{106 - h}" font-size="10">{c or ""}</text>'
        )
    return "".join(parts) + "</svg>"


def render_html(
    summary: dict[str, Any], records: Sequence[dict[str, Any]], failures: list[str]
) -> str:
    esc = html.escape
    head_rows = "".join(
        f"<tr><td>{esc(label)}</td><td>{percent(lookup(summary, path))}</td></tr>"
        for path, (label, _) in HEADLINES.items()
    )
    h = summary["hallucination"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Shiori evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "td,th{padding:2px 10px;text-align:left;vertical-align:top}"
        ".bad{color:#b00}.src{color:#555;font-size:90%}</style>",
        "<h1>Shiori evaluation</h1>",
        f"<p>{summary['questions']} questions ({summary['answerable']} answerable); answer model "
        f"{esc(', '.join(summary['models']))}; {esc(summary['judge']['label'] or 'no judge')}.</p>",
        "<h2>Thresholds</h2>",
        "<p class='bad'>" + "<br>".join(map(esc, failures)) + "</p>"
        if failures
        else "<p>All thresholds met.</p>",
        f"<h2>Headline</h2><table>{head_rows}</table>",
        f"<p>Hallucination = wrong answers ({h.get('wrong_answers', 0)}) + answered when "
        f"unanswerable ({h['answered_when_unanswerable']}) + right-looking answers judged "
        f"unfaithful ({h['unfaithful_answers']} of {h['judged_answers']} judged), each question "
        f"counted once, over {h['n_items']} questions.</p>",
        _outcome_table(summary),
        _risk_coverage_section(summary),
        "<h2>By category</h2>",
        _svg_bars(
            [(f"{k} (n={v['n']})", v["contains"]) for k, v in summary["by_category"].items()]
        ),
        "<p class='src'>share of answers containing the reference (answerable categories); "
        "unanswerable: see abstention</p>",
        _svg_bars([(f"{k} abstained", v["abstained"]) for k, v in summary["by_category"].items()]),
        "<h2>By language</h2>",
        _svg_bars(
            [(f"{k} (n={v['n']})", v["contains"]) for k, v in summary["by_language"].items()]
        ),
        "<h2>Distributions</h2><p>token F1 of answerable questions</p>",
        _svg_histogram([r["metrics"]["f1"] for r in records if "f1" in r["metrics"]]),
    ]
    faith = [
        v
        for r in records
        if (v := ((r.get("judge") or {}).get("scores") or {}).get("faithfulness")) is not None
    ]
    if faith:
        parts += ["<p>ragas faithfulness</p>", _svg_histogram(faith)]
    parts.append(
        "<h2>Worst answers</h2><table><tr><th>question</th><th>answer</th><th>sources</th></tr>"
    )
    for r in worst(records, 15):
        sources = "<br>".join(
            f"[{c['n']}] {esc(c['source'])}:{c['lines'][0]}-{c['lines'][1]} {esc(c['heading'])}"
            for c in shown_passages(r)
        )
        expected = r["reference_answer"] or "(unanswerable)"
        check = r["metrics"].get("check") or {}
        why = "; ".join(
            [f"missing {x}" for x in check.get("missing", [])]
            + [f"says {x}" for x in check.get("forbidden", [])]
        )
        parts.append(
            f"<tr><td>{esc(r['question'])}<div class='src'>{esc(r['id'])} · expected: "
            f"{esc(expected)}</div></td><td>{esc(r['answer'])}<div class='src'>"
            f"{esc(r['metrics'].get('outcome', ''))} · {esc(r['reason'])}"
            f"{' · ' + esc(why) if why else ''}</div></td><td class='src'>{sources}</td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def worst(records: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Wrong answers and answers to unanswerable questions first (what misleads a user), then
    false abstentions, then right answers with a low token F1."""
    rank = {"wrong": 3.0, "answered_unanswerable": 3.0, "false_abstention": 2.0}

    def badness(r: dict[str, Any]) -> float:
        metrics = r["metrics"]
        base = rank.get(metrics.get("outcome", ""), 0.0)
        return base + (1.0 - metrics.get("f1", 1.0)) if r["answerable"] else base

    answered = [r for r in records if r["answer"] is not None]  # not retrieval-only rows
    return sorted((r for r in answered if badness(r) > 0), key=badness, reverse=True)[:n]


def write(
    report_dir: Path,
    summary: dict[str, Any],
    records: Sequence[dict[str, Any]],
    failures: list[str],
) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "summary.json").write_text(
        json.dumps(
            {**summary, "threshold_failures": failures}, ensure_ascii=False, indent=2, default=str
        ),
        encoding="utf-8",
    )
    (report_dir / "report.html").write_text(render_html(summary, records, failures), "utf-8")


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    """(metric, A, B, verdict) for every headline metric measured in either run."""
    rows = []
    for path, (label, direction) in HEADLINES.items():
        x, y = lookup(a, path), lookup(b, path)
        if math.isnan(x) and math.isnan(y):
            continue
        if math.isnan(x) or math.isnan(y) or abs(x - y) < 1e-9:
            verdict = "same" if abs(x - y) < 1e-9 else "—"
        else:
            better = y > x if direction == "min" else y < x
            verdict = "better" if better else "worse"
        rows.append((label, x, y, verdict))
    return rows
