"""The picture of an analysed recording: one lane per speaker, each utterance a bar from
its start to its end, coloured by the predicted emotion, as opaque as the model is
confident (the label's probability); and an HTML page with the transcript beside it."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# IEMOCAP / MELD labels get fixed, readable colours; other labels take tab10's in order
COLOURS = {
    "ang": "#d62728", "anger": "#d62728", "hap": "#ffbf00", "joy": "#ffbf00", "exc": "#ff7f0e",
    "neu": "#9e9e9e", "neutral": "#9e9e9e", "sad": "#1f77b4", "sadness": "#1f77b4", "fru": "#8c564b",
    "fear": "#9467bd", "disgust": "#2ca02c", "surprise": "#e377c2",
}  # fmt: skip


def colours(labels: list[str]) -> dict[str, str]:
    spare = iter(c for c in plt.get_cmap("tab10").colors if matplotlib.colors.to_hex(c) not in COLOURS.values())
    return {c: COLOURS.get(c.lower()) or matplotlib.colors.to_hex(next(spare, (0.5, 0.5, 0.5))) for c in labels}


def plot_timeline(rows: list[dict[str, Any]], labels: list[str], title: str) -> bytes:
    """PNG bytes of the timeline (see the module doc)."""
    speakers = list(dict.fromkeys(r["speaker"] for r in rows))
    palette = colours(labels)
    end = max(r["end"] for r in rows)
    fig, ax = plt.subplots(figsize=(min(24, 6 + end / 10), 1.2 + 0.6 * len(speakers)))
    for r in rows:
        lane = speakers.index(r["speaker"])
        confidence = r["probs"][r["label"]]
        ax.barh(
            lane, r["end"] - r["start"], left=r["start"], height=0.7, color=palette[r["label"]],
            alpha=0.25 + 0.75 * confidence, edgecolor="black", linewidth=0.4,
        )  # fmt: skip
    ax.set_yticks(range(len(speakers)), speakers)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_xlim(0, end * 1.01)
    ax.set_title(f"{title}: emotion per utterance (opacity = confidence)")
    ax.legend(
        handles=[Patch(color=palette[c], label=c) for c in labels],
        loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
    )  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def html_page(rows: list[dict[str, Any]], labels: list[str], title: str, png: bytes) -> str:
    """A self-contained page: the timeline, then the transcript with each utterance's emotion."""
    palette = colours(labels)
    lines = []
    for r in rows:
        confidence = r["probs"][r["label"]]
        missing = f" <small>(no {', '.join(r['missing'])})</small>" if r.get("missing") else ""
        lines.append(
            f"<tr><td>{r['start']:.1f}&ndash;{r['end']:.1f}</td><td>{html.escape(r['speaker'])}</td>"
            f"<td>{html.escape(r.get('text') or '')}</td>"
            f'<td><span style="background:{palette[r["label"]]};opacity:{0.35 + 0.65 * confidence:.2f};'
            f'padding:0 6px;border-radius:3px">{html.escape(r["label"])}</span> {confidence:.2f}{missing}</td></tr>'
        )
    image = base64.b64encode(png).decode()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><img alt='timeline' src='data:image/png;base64,{image}' style='max-width:100%'>"
        "<table><tr><th>seconds</th><th>speaker</th><th>transcript</th><th>emotion, confidence</th></tr>"
        + "\n".join(lines)
        + "</table></body></html>\n"
    )
