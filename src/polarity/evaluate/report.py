"""Report files: metrics.json, predictions.csv, PNG charts, report.md and a self-contained
report.html (charts embedded as base64) that opens offline.

Texts, categories and names come from the test file, so they are written inert: a
predictions.csv cell that a spreadsheet would run as a formula gets a leading ``'``
(:func:`spreadsheet_safe`), and report.md holds them HTML-escaped (:func:`_md_text`)."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

from polarity.contract import label_of
from polarity.evaluate import charts
from polarity.folders import slug
from polarity.labels import LABELS


def write_report(out: Path, test_name: str, results: list[dict], texts: list[str],
                 gold: list[str], categories: list[str | None], bad_rows: list[str]) -> dict:
    """``results``: one dict per model with name, metrics, p_positive, latencies_ms,
    latency_kind, profile (or None) and calibration (or None)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "charts").mkdir(exist_ok=True)
    first = results[0]
    summary = {**first["metrics"], "model": first["name"], "test_file": test_name,
               "bad_rows": len(bad_rows),
               "setup": first.get("setup"),
               "models": {r["name"]: {"metrics": r["metrics"], "profile": r["profile"],
                                      "calibration": r["calibration"],
                                      "setup": r.get("setup")} for r in results}}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")

    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "text", "gold", "predicted", "confidence", "latency_ms",
                     "category"])
        for r in results:
            for i, text in enumerate(texts):
                p = r["p_positive"][i]
                label = label_of(p)
                w.writerow([spreadsheet_safe(v) for v in (
                    r["name"], text, gold[i], label, f"{max(p, 1 - p):.6f}",
                    f"{r['latencies_ms'][i]:.3f}", categories[i] or "")])

    sections_md, sections_html = [], []
    for r in results:
        images = _charts(out, r, gold)
        md, body = _model_section(r, texts, gold, categories, images)
        sections_md.append(md)
        sections_html.append(body)
    comparison = _comparison(results)
    md = [f"# Sentiment evaluation: {_md_text(test_name)}", "",
          f"{len(texts)} texts ({sum(g == LABELS[1] for g in gold)} positive, "
          f"{sum(g == LABELS[0] for g in gold)} negative); {len(bad_rows)} bad rows skipped.",
          "", "## Overall performance", "", comparison, "", *sections_md]
    if bad_rows:
        md += ["## Skipped rows", ""] + [f"- {_md_text(b)}" for b in bad_rows[:50]]
    (out / "report.md").write_text("\n".join(md) + "\n")
    (out / "report.html").write_text(_html(test_name, comparison, sections_html, bad_rows))
    return summary


#: First characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection
#: list): such a cell is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it without running it: ``'=1+1`` for ``=1+1``."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _md_text(text: str) -> str:
    """Text from the test file, HTML-escaped, so that no viewer of report.md renders markup
    (``<script>`` becomes ``&lt;script&gt;``, which a Markdown viewer shows as written)."""
    return html.escape(str(text), quote=False)


def _charts(out: Path, r: dict, gold: list[str]) -> dict[str, bytes]:
    m = r["metrics"]
    conf = [max(p, 1 - p) for p in r["p_positive"]]
    correct = [label_of(p) == g for p, g in zip(r["p_positive"], gold,
                                                             strict=True)]
    images = {
        "confusion_matrix": charts.confusion_matrix(m, r["name"]),
        "reliability_diagram": charts.reliability_diagram(m, r["name"]),
        "confidence_histogram": charts.confidence_histogram(conf, correct, r["name"]),
        "latency_distribution": charts.latency_histogram(
            r["profile"]["latencies_ms"] if r["profile"] else r["latencies_ms"], r["name"],
            r["latency_kind"]),
    }
    for key, png in images.items():
        (out / "charts" / f"{slug(r['name'])}-{key}.png").write_bytes(png)
    return images


def _comparison(results: list[dict]) -> str:
    head = ("| model | accuracy | macro F1 | ROC-AUC | ECE | mean confidence | p50 ms | p95 ms |"
            "\n|---|---|---|---|---|---|---|---|")
    rows = []
    for r in results:
        m, prof = r["metrics"], r["profile"] or {}
        lat = prof.get("latency_ms", {})
        auc = f"{m['roc_auc']:.4f}" if m["roc_auc"] is not None else "n/a"
        rows.append(f"| {_cell(r['name'])} | {m['accuracy']:.4f} | {m['macro']['f1']:.4f} | "
                    f"{auc} | "
                    f"{m['calibration']['ece']:.4f} | {m['confidence']['mean']:.3f} | "
                    f"{_num(lat.get('p50'))} | {_num(lat.get('p95'))} |")
    return "\n".join([head, *rows])


def _num(x) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "not profiled"


def _model_section(r, texts, gold, categories, images) -> tuple[str, str]:
    m, name = r["metrics"], r["name"]
    lines = [f"## {_md_text(name)}", ""]
    if r.get("setup"):
        s = r["setup"]
        lines += [f"Run on: {s['backend']} backend, {s.get('runtime')} runtime, {s['dtype']}, "
                  f"batch size {s['batch_size']}, "
                  f"{s['threads']} thread(s), {s['cpu']['name']} "
                  f"({', '.join(s['cpu']['extensions']) or 'no AVX2'}, {s['cpu']['cores']} "
                  f"cores); model sha256 {str(s['model_sha256'])[:16]}.", ""]
    lines += ["### Performance by class", "",
             "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab in LABELS:
        c = m["per_class"][lab]
        lines.append(f"| {lab} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | "
                     f"{c['support']} |")
    cm = m["confusion_matrix"]["matrix"]
    lines += ["", f"Confusion matrix (rows gold NEGATIVE/POSITIVE, columns predicted): {cm}", ""]
    for group in ("by_category", "by_source"):
        if group in m:
            lines += [f"### Accuracy {group.replace('_', ' ')}", "", "| value | n | accuracy |",
                      "|---|---|---|"]
            lines += [f"| {_cell(k)} | {v['n']} | {v['accuracy']:.4f} |"
                      for k, v in m[group].items()]
            lines.append("")
    conf = m["confidence"]
    lines += ["### Confidence analysis", "",
              f"Mean {conf['mean']:.3f}, median {conf['median']:.3f}, std {conf['std']:.3f}, "
              f"min {conf['min']:.3f}, max {conf['max']:.3f}. ECE (15 bins) "
              f"{m['calibration']['ece']:.4f}; NLL {m['nll']:.4f}.", ""]
    for band, v in m["accuracy_by_confidence"].items():
        acc = f"{v['accuracy']:.4f}" if v["accuracy"] is not None else "n/a"
        lines.append(f"- confidence {band}: {v['count']} texts, accuracy {acc}")
    if r["calibration"]:
        c = r["calibration"]
        lines += ["", f"Calibration: temperature {c['temperature']:.3f}; ECE before "
                  f"{c['ece_before']:.4f}, after {c['ece_after']:.4f}."]
    prof = r["profile"]
    lines += ["", "### Response-time analysis", ""]
    if prof:
        lat = prof["latency_ms"]
        tp = ", ".join(f"batch {k}: {v:.1f}/s" for k, v in prof["throughput_texts_per_s"].items())
        load = prof["load_seconds"]
        lines += [f"Single text: p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, p99 "
                  f"{lat['p99']:.2f} ms, mean {lat['mean']:.2f} ms (n={lat['n']}).",
                  f"Throughput (texts/s): {tp}.",
                  f"Model load {load:.2f} s; peak RSS {prof['peak_rss_mb']:.0f} MB."
                  if load is not None else f"Peak RSS {prof['peak_rss_mb']:.0f} MB."]
    else:
        lines.append("Not profiled (run with --profile-performance); per-text latencies below "
                     "are batch time divided by batch size.")
    wrong = [i for i, p in enumerate(r["p_positive"]) if label_of(p) != gold[i]]
    lines += ["", f"### Error analysis: {len(wrong)} wrong predictions", "",
              "| text | gold | predicted | confidence | category |", "|---|---|---|---|---|"]
    for i in sorted(wrong, key=lambda i: -max(r["p_positive"][i], 1 - r["p_positive"][i])):
        p = r["p_positive"][i]
        lines.append(f"| {_cell(texts[i])} | {gold[i]} | {label_of(p)} | "
                     f"{max(p, 1 - p):.3f} | {_cell(categories[i] or '')} |")
    md = "\n".join(lines) + "\n"
    imgs = "".join(f'<figure><img alt="{k}" src="data:image/png;base64,'
                   f'{base64.b64encode(v).decode()}"><figcaption>{k.replace("_", " ")}'
                   f"</figcaption></figure>" for k, v in images.items())
    return md, _md_to_html(md) + f'<div class="charts">{imgs}</div>'


def _cell(text: str, limit: int = 160) -> str:
    text = str(text).replace("\n", " ")
    text = text if len(text) <= limit else text[:limit] + "..."
    return _md_text(text).replace("|", "\\|")


def _md_to_html(md: str) -> str:
    """Enough Markdown for our own output: headings, tables, bullets, paragraphs."""
    out, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[_html_text(c.strip().replace("\\|", "|")) for c in
                      r.strip().strip("|").split(" | ")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                           for row in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_html_text(line.lstrip('# '))}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<li>{_html_text(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{_html_text(line)}</p>")
    flush()
    return "\n".join(out)


def _html_text(md_text: str) -> str:
    """A line of our Markdown (texts already escaped there) escaped once for HTML."""
    return html.escape(html.unescape(md_text))


def _html(test_name, comparison, sections, bad_rows) -> str:
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
             "padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}"
             "th{background:#f3f3f3}.charts{display:flex;flex-wrap:wrap;gap:1em}"
             "figure{margin:0}img{max-width:520px}")
    skipped = ("<h2>Skipped rows</h2><ul>" + "".join(f"<li>{html.escape(b)}</li>"
                                                     for b in bad_rows[:50]) + "</ul>"
               if bad_rows else "")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>polarity report: "
            f"{html.escape(test_name)}</title><style>{style}</style></head><body>"
            f"<h1>Sentiment evaluation: {html.escape(test_name)}</h1><h2>Overall performance"
            f"</h2>{_md_to_html(comparison)}{''.join(sections)}{skipped}</body></html>\n")
