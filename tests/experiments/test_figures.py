"""Each kind of table gets a figure drawn from its summaries; nothing is drawn without runs."""

from __future__ import annotations

from lpgnet.experiments.figures import draw_table_figure
from lpgnet.experiments.manifest import Row, Table


def _summary(test: list[float], valid: list[float], classes=("ang", "sad")) -> dict:
    per_class = {c: {"f1": {"mean": 0.7, "std": 0.02}, "recall": {"mean": 0.72, "std": 0.05}} for c in classes}
    return {
        "runs": [
            {
                "seed": i,
                "valid": {"weighted_f1": v},
                "test": {"weighted_f1": t, "accuracy": t},
                "fold_models_test": {"members": {"accuracy": [t - 0.01, t + 0.01]}, "ensemble": {"accuracy": t + 0.02}},
            }
            for i, (t, v) in enumerate(zip(test, valid, strict=True))
        ],
        "test": {"per_class": per_class},
    }


def test_every_table_kind_gets_a_png(tmp_path):
    a, b, c = Row(name="A", key="a"), Row(name="B", key="b"), Row(name="C", key="c")
    summaries = [
        (a, _summary([0.80, 0.82, 0.79], [0.76, 0.77, 0.75])),
        (b, _summary([0.81], [0.74], classes=("ang", "sad", "fru"))),
        (c, None),  # not run yet: a label, no dots
    ]
    for kind in ("main", "study", "selection", "per_class", "retrain"):
        path = tmp_path / f"{kind}.png"
        assert draw_table_figure(Table(id=kind, title=f"T {kind}", rows=[a, b, c], kind=kind), summaries, path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    assert list(tmp_path.glob(".*.tmp")) == []  # written atomically, nothing left behind


def test_no_runs_no_figure(tmp_path):
    row = Row(name="A", key="a")
    path = tmp_path / "t.png"
    assert not draw_table_figure(Table(id="t", title="T", rows=[row]), [(row, None)], path)
    assert not path.exists()
