"""The results page: manifest, record, rendering, targets, --only."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from lpgnet import ConfigError, load_config
from lpgnet.cli import main
from lpgnet.experiments import runner as exp_mod
from lpgnet.experiments.render import _top_confusion, build_sections, join_sections
from lpgnet.experiments.runner import run_experiment
from lpgnet.training.metrics import HEADLINE


def results_page(manifest, **kw) -> str:
    """The whole results page a manifest renders (what ``lpgnet report`` writes)."""
    return join_sections(build_sections(manifest, **kw))


def test_report_from_a_manifest(tmp_path, monkeypatch):
    cfg = tmp_path / "quick.yaml"
    cfg.write_text(
        "model: {name: lpgnet, d_model: 16, heads: 2}\ntrain: {epochs: 2, progress: false}\n"
        "data: {synthetic: {train_dialogues: 20, test_dialogues: 6, d_text: 8, d_audio: 4}}\n"
    )
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        f"runs_dir: {tmp_path / 'runs'}\npreamble: '# Title'\n"
        f"tables:\n  - id: t\n    title: Main\n    rows:\n"
        f"      - {{name: LPGNet, config: {cfg}, seeds: 2, paper: {{acc: 87.99, f1: 87.96}}}}\n"
        f"      - {{name: Later, config: {cfg}, set: [model.dropout=0.2]}}\n"
        f"      - {{name: Once, config: {cfg}, seeds: 1}}\n"
    )
    text = results_page(manifest)
    assert "not run yet" in text and "87.99 / 87.96" not in text.split("| LPGNet |")[0]
    assert main(["report", "--manifest", str(manifest), "--out", str(tmp_path / "R.md"), "--run", "--only", "t"]) == 0
    text = (tmp_path / "R.md").read_text()
    summary = json.loads((tmp_path / "runs" / "t" / "lpgnet" / "summary.json").read_text())
    acc = summary["test"]["accuracy"]
    assert f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}" in text
    assert "87.99 / 87.96" in text and "not run yet" not in text
    assert f"--set model.dropout=0.2 --seeds 3 --out {tmp_path / 'runs' / 't' / 'later'}" in text
    once = json.loads((tmp_path / "runs" / "t" / "once" / "summary.json").read_text())["test"]["accuracy"]
    once_row = next(line for line in text.splitlines() if line.startswith("| Once |"))
    assert f"| 1 | {100 * once['mean']:.2f} |" in once_row and "±" not in once_row  # one run: no spread shown


def test_report_same_as_rows_reuse_another_rows_experiment(tmp_path):
    cfg = tmp_path / "quick.yaml"
    cfg.write_text(
        "model: {name: linear}\ntrain: {epochs: 1, progress: false}\n"
        "data: {synthetic: {train_dialogues: 12, test_dialogues: 4, d_text: 8, d_audio: 4}}\n"
    )
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        f"runs_dir: {tmp_path / 'runs'}\ntables:\n"
        f"  - {{id: a, title: A, rows: [{{name: X, config: {cfg}, seeds: 2}}]}}\n"
        f"  - {{id: b, title: B, kind: per_class, rows: [{{name: Y, same_as: a/x}}]}}\n"
    )
    text = results_page(manifest, run=True, log=lambda m: None)
    assert not (tmp_path / "runs" / "b").exists()  # nothing run twice
    assert "**Y** (test, N = 2" in text and "the experiment of row a/x" in text
    manifest.write_text(manifest.read_text().replace("same_as: a/x", "same_as: a/nope"))
    with pytest.raises(ConfigError, match="same_as 'a/nope' names no row"):
        results_page(manifest)


def test_per_class_tables_name_where_a_class_is_missed():
    def run(hap_as_neu: int) -> dict:
        # rows true, columns predicted (scikit-learn's confusion_matrix)
        cm = [[10, 0, 0], [0, 20 - hap_as_neu, hap_as_neu], [1, 0, 9]]
        return {"test": {"labels": ["ang", "hap", "neu"], "confusion_matrix": cm}}

    runs = [run(2), run(6)]  # 10 % and 30 % of hap taken by neu
    assert _top_confusion(runs, "hap") == "neu 20.00 ± 14.14"
    assert _top_confusion(runs, "neu") == "ang 10.00 ± 0.00"
    assert _top_confusion(runs[:1], "hap") == "neu 10.00"  # one run: no spread
    assert _top_confusion(runs, "ang") == "none"  # never missed
    assert _top_confusion([{"test": {"labels": ["ang"]}}], "ang") == "–"  # recorded without a matrix


def test_manifest_errors_name_the_problem(tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text("tables:\n  - {id: t, title: T, rows: [{name: A, config: c.yaml, seeds: ten}]}\n")
    with pytest.raises(ConfigError, match=r"tables\[0\].rows\[0\].seeds: expected int"):
        results_page(m)
    m.write_text("tables:\n  - {id: t, title: T, rows: [{name: A, config: c.yaml}, {name: a, config: d.yaml}]}\n")
    with pytest.raises(ConfigError, match="share the key 'a'"):
        results_page(m)
    m.write_text("tables:\n  - {id: t, kind: study, title: T, rows: [{name: A, config: c.yaml, base: b}]}\n")
    with pytest.raises(ConfigError, match="row 'A': base 'b' names no other row"):
        results_page(m)
    m.write_text(
        "tables:\n  - {id: t, title: T, rows: [{name: A, config: c.yaml}, {name: B, config: c.yaml, base: a}]}\n"
    )
    with pytest.raises(ConfigError, match="row 'B': base is for tables of kind study"):
        results_page(m)
    rows = "tables:\n  - {id: t, title: T, rows: [{name: A, config: c.yaml}]}\ntargets:\n"
    m.write_text(rows + "  - {text: s, row: t/a, statistic: std}\n")
    with pytest.raises(ConfigError, match=r"targets\[0\] \('s'\): statistic std: expected one row"):
        results_page(m)
    m.write_text(rows + "  - {text: s, row: t/a, at_most: 0.01}\n")
    with pytest.raises(ConfigError, match="at_most is for statistic std"):
        results_page(m)
    m.write_text(rows + "  - {text: s, row: t/a, statistic: median}\n")
    with pytest.raises(ConfigError, match=r"targets\[0\].statistic"):
        results_page(m)
    m.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        results_page(m)


def test_a_stale_summary_is_flagged_not_shown(tmp_path):
    cfg = tmp_path / "quick.yaml"
    cfg.write_text(
        "model: {name: linear}\ntrain: {epochs: 1, progress: false}\n"
        "data: {synthetic: {train_dialogues: 12, test_dialogues: 4, d_text: 8, d_audio: 4}}\n"
    )
    m = tmp_path / "m.yaml"
    m.write_text(
        f"runs_dir: {tmp_path / 'runs'}\ntables:\n  - {{id: t, title: T, rows: [{{name: A, config: {cfg}, seeds: 1}}]}}\n"
    )
    results_page(m, run=True, log=lambda msg: None)
    cfg.write_text(cfg.read_text().replace("epochs: 1", "epochs: 2"))
    text = results_page(m)  # the old figures are not shown as the row's result
    assert "| A | out of date: its config changed" in text and "±" not in text


def test_report_renders_benchmark_json(tmp_path):
    speed = tmp_path / "speed.json"
    speed.write_text(
        json.dumps(
            {
                "env": {"cpu": "TestCPU", "threads": 2, "torch": "x"},
                "matmul_gflops": 100.0,
                "models": [
                    {
                        "config": "c.yaml",
                        "d_model": 256,
                        "params": 1234,
                        "sec_per_epoch": 1.5,
                        "gflop_per_epoch": 30.0,
                        "achieved_gflops": 20.0,
                        "fraction_of_matmul_peak": 0.2,
                        "padding_per_utterance": {"bucketed": 0.1, "random": 0.9},
                    }
                ],
            }
        )
    )
    m = tmp_path / "m.yaml"
    m.write_text(
        f"tables: []\nbenchmarks:\n  - {{title: Speed, kind: train_speed, file: {speed}, command: python b.py}}\n"
        f"  - {{title: Text, kind: text_features, file: {tmp_path / 'missing.json'}, command: python t.py}}\n"
    )
    text = results_page(m)
    assert "| `c.yaml` | 256 | 1,234 | 1.50 | 30.0 | 20.0 | 20% | 0.10 / 0.90 |" in text
    assert "not run yet" in text and "python t.py" in text


def test_report_targets_are_computed_from_summaries(tmp_path):
    from lpgnet.config import dump_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: linear}\n")
    per_seed = {"a": [0.80, 0.82], "b": [0.70, 0.70], "d": [0.60, 0.61]}
    for key, acc in (("a", 0.81), ("b", 0.70), ("d", 0.605)):
        (tmp_path / "runs" / "t" / key).mkdir(parents=True)
        (tmp_path / "runs" / "t" / key / "summary.json").write_text(
            json.dumps(
                {
                    "runs": [{"seed": s, "fold": None, "test": {"accuracy": v}} for s, v in enumerate(per_seed[key])],
                    "seeds": [0, 1],
                    "folds": None,
                    "config_yaml": dump_config(load_config(cfg)),
                    "valid": {},
                    "test": {
                        k: {"mean": acc, "std": 0.0141 if key == "a" else 0.0, "n": 2}
                        for k in ("accuracy", "weighted_f1", "macro_f1", "uar", "ova_accuracy", "ova_f1")
                    },
                }
            )
        )
    rows = "".join(f"      - {{name: {k}, key: {k}, config: {cfg}, seeds: 2}}\n" for k in "abcd")
    m = tmp_path / "m.yaml"
    m.write_text(
        f"runs_dir: {tmp_path / 'runs'}\nbenchmarks: []\ntables:\n  - id: t\n    title: T\n    rows:\n{rows}targets:\n"
        "  - {text: 'acc', row: t/a, at_least: 0.78}\n"
        "  - {text: 'goal', row: t/a, at_least: 0.83}\n"
        "  - {text: 'gap', row: t/a, minus: t/b, at_least: 0.2}\n"
        "  - {text: 'later', row: t/c, at_least: 0.5}\n"
        "  - {text: 'gap2', row: t/d, minus: t/a, at_least: 0.0}\n"
        "  - {text: 'steady', row: t/a, statistic: std, at_most: 0.02}\n"
        "  - {text: 'steadier', row: t/a, statistic: std, at_most: 0.01}\n"
    )
    text = results_page(m)
    assert "| acc | accuracy 0.8100 (N = 2) | | yes |" in text
    assert "| goal | accuracy 0.8100 (N = 2) | | **no** (short by 0.0200) |" in text  # an unmet goal says by how much
    # paired by seed: differences 0.10 and 0.12, t interval with 1 degree of freedom crosses zero
    assert (
        "| gap | accuracy 0.8100 - 0.7000 = 0.1100 (N = 2 / 2) | +0.1100 [-0.0171, +0.2371], 2 pairs | not resolved |"
        in text
    )
    # differences -0.20 and -0.21: resolved, and below the target
    assert (
        "| gap2 | accuracy 0.6050 - 0.8100 = -0.2050 (N = 2 / 2) | -0.2050 [-0.2685, -0.1415], 2 pairs | **no** |"
        in text
    )
    assert "| later | not run yet | | |" in text
    # the spread target reads the row's std over its runs, not its mean
    assert "| steady | accuracy std 0.0141 over 2 runs | | yes |" in text
    assert "| steadier | accuracy std 0.0141 over 2 runs | | **no** (over by 0.0041) |" in text


def _quick_manifest(tmp_path, record=True, seeds_x=1):
    cfg = tmp_path / "quick.yaml"
    cfg.write_text(
        "model: {name: linear}\ntrain: {epochs: 1, progress: false}\n"
        "data: {synthetic: {train_dialogues: 12, test_dialogues: 4, d_text: 8, d_audio: 4}}\n"
    )
    m = tmp_path / "m.yaml"
    m.write_text(
        f"runs_dir: {tmp_path / 'runs'}\n"
        + (f"record_dir: {tmp_path / 'record'}\n" if record else "")
        + f"preamble: '# Page'\ntables:\n"
        f"  - {{id: a, title: A, rows: [{{name: X, config: {cfg}, seeds: {seeds_x}}}]}}\n"
        f"  - {{id: b, title: B, rows: [{{name: Y, config: {cfg}, seeds: 1, set: [train.lr=0.01]}}]}}\n"
        "targets:\n  - {text: 'x', row: a/x, at_least: 0.0}\n"
    )
    return m


def test_the_record_regenerates_the_page_without_the_run_directories(tmp_path):
    import shutil

    m = _quick_manifest(tmp_path)
    page = tmp_path / "R.md"
    assert main(["report", "--manifest", str(m), "--out", str(page), "--run"]) == 0
    first = page.read_text()
    assert "not run yet" not in first
    kept = json.loads((tmp_path / "record" / "a" / "x.json").read_text())
    assert kept == json.loads((tmp_path / "runs" / "a" / "x" / "summary.json").read_text())
    assert "![A](figures/a.png)" in first and (tmp_path / "figures" / "a.png").read_bytes()[:4] == b"\x89PNG"
    shutil.rmtree(tmp_path / "runs")  # a clean clone: no run directories, only the record
    assert results_page(m, figures=tmp_path / "figures") == first
    assert "not run yet" in results_page(m, use_record=False)
    # a record that no longer answers its row (the config changed) is flagged, not shown
    (tmp_path / "quick.yaml").write_text((tmp_path / "quick.yaml").read_text().replace("epochs: 1", "epochs: 2"))
    assert "| X | out of date: its config changed" in results_page(m)


def test_an_unfinished_row_is_kept_in_the_record_and_finished_from_it(tmp_path, monkeypatch):
    """A row too long for one machine's sitting: its finished seeds go into the record, the
    page says how far it is, and ``--run`` on a clean clone trains only the rest."""
    import shutil

    m = _quick_manifest(tmp_path, seeds_x=3)
    cfg = tmp_path / "quick.yaml"
    run_experiment(str(cfg), tmp_path / "runs" / "a" / "x", [0, 1], log=lambda m: None)  # 2 of the row's 3 seeds
    page = tmp_path / "R.md"
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "a"]) == 0
    assert "| X | incomplete: 2 of its 3 runs finished" in page.read_text()
    kept = json.loads((tmp_path / "record" / "a" / "x.json").read_text())
    assert [r["seed"] for r in kept["runs"]] == [0, 1]
    # a summary with fewer runs than the record never replaces it
    shutil.rmtree(tmp_path / "runs")
    run_experiment(str(cfg), tmp_path / "runs" / "a" / "x", [1], log=lambda m: None)
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "a"]) == 0
    assert json.loads((tmp_path / "record" / "a" / "x.json").read_text()) == kept
    # a clean clone: --run trains seed 2 only and the row is complete
    shutil.rmtree(tmp_path / "runs")
    calls = []
    real = exp_mod.train
    monkeypatch.setattr(exp_mod, "train", lambda *a, **k: calls.append(k["out_dir"]) or real(*a, **k))
    assert main(["report", "--manifest", str(m), "--out", str(page), "--run", "--only", "a"]) == 0
    assert calls == [tmp_path / "runs" / "a" / "x" / "seed-2"]
    done = json.loads((tmp_path / "record" / "a" / "x.json").read_text())
    assert done["runs"][:2] == kept["runs"] and [r["seed"] for r in done["runs"]] == [0, 1, 2]
    assert "incomplete" not in page.read_text() and "| X | 3 |" in page.read_text()
    # and a finished record is never replaced by a part of the row
    shutil.rmtree(tmp_path / "runs")
    run_experiment(str(cfg), tmp_path / "runs" / "a" / "x", [0], log=lambda m: None)
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "a"]) == 0
    assert json.loads((tmp_path / "record" / "a" / "x.json").read_text()) == done and "| X | 3 |" in page.read_text()


def test_only_replaces_the_named_sections_and_keeps_the_rest(tmp_path):
    m = _quick_manifest(tmp_path, record=False)
    page = tmp_path / "R.md"
    assert main(["report", "--manifest", str(m), "--out", str(page)]) == 0
    text = page.read_text()
    assert text.count("not run yet") == 3  # target, A, B
    page.write_text(text.replace("| Y | not run yet", "| Y | kept as it was"))
    assert main(["report", "--manifest", str(m), "--out", str(page), "--run", "--only", "a", "--only", "targets"]) == 0
    text = page.read_text()
    assert "| Y | kept as it was" in text and not (tmp_path / "runs" / "b").exists()  # B neither run nor re-rendered
    assert (tmp_path / "figures" / "a.png").exists() and not (tmp_path / "figures" / "b.png").exists()
    assert "| X | not run yet" not in text and "| x | accuracy" in text
    assert text.startswith("# Page\n\n### Targets\n") and text.endswith("```\n")
    # a table new to the manifest lands before the next section the page has
    m.write_text(
        m.read_text().replace("  - {id: b,", "  - {id: n, title: N, rows: [{name: Z, same_as: a/x}]}\n  - {id: b,")
    )
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "n"]) == 0
    new = page.read_text()
    assert new.index("### A\n") < new.index("### N\n") < new.index("### B\n") and "| Y | kept as it was" in new
    page.write_text(text)
    m.write_text(m.read_text().replace("  - {id: n, title: N, rows: [{name: Z, same_as: a/x}]}\n", ""))
    m.write_text(m.read_text().replace("preamble: '# Page'", "preamble: '# New title'"))
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "preamble"]) == 0
    assert page.read_text() == text.replace("# Page\n", "# New title\n")
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "nope"]) == 2


def test_only_refreshes_the_footer_totals_which_count_every_row(tmp_path):
    """The footer sums every row's runs: a row given more seeds with --only changes it."""
    m = _quick_manifest(tmp_path)
    page = tmp_path / "R.md"
    assert main(["report", "--manifest", str(m), "--out", str(page), "--run"]) == 0
    assert "\nBehind this page: 2 training runs," in page.read_text()
    m.write_text(m.read_text().replace("seeds: 1, set", "seeds: 2, set"))  # row b: seeds 0-1
    assert main(["report", "--manifest", str(m), "--out", str(page), "--run", "--only", "b"]) == 0
    text = page.read_text()
    assert "\nBehind this page: 3 training runs," in text and text.count("Behind this page:") == 1
    footer = [ln for ln in results_page(m, figures=tmp_path / "figures").splitlines() if ln.startswith("Behind")]
    assert text.endswith(footer[0] + "\n")


def test_only_replaces_a_renamed_section_in_place(tmp_path):
    """A table whose title changed in the manifest replaces its old section on the page
    (found where it sits: after the section before it), never lands beside it."""
    m = _quick_manifest(tmp_path, record=False)
    page = tmp_path / "R.md"
    assert main(["report", "--manifest", str(m), "--out", str(page)]) == 0
    before = page.read_text()
    m.write_text(m.read_text().replace("title: A,", "title: A renamed,"))
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "a"]) == 0
    after = page.read_text()
    assert "### A\n" not in after and after.count("### A renamed\n") == 1
    assert after == before.replace("### A\n", "### A renamed\n").replace(
        "[A](figures/a.png)", "[A renamed](figures/a.png)"
    )
    # a section whose title is still another table's is never taken for the renamed one
    start, end = before.index("### A\n"), before.index("### B\n")
    page.write_text(before[:start] + before[end:])  # a page without A: B follows the targets
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "a"]) == 0
    again = page.read_text()
    assert again.count("### B\n") == 1 and again.index("### A renamed\n") < again.index("### B\n")


def test_the_shipped_manifest_and_its_record_agree(monkeypatch):
    """experiments/iemocap.yaml parses, every row's config loads, and every summary kept
    in its record still answers its row (a config edit would leave it stale)."""
    from pathlib import Path

    from lpgnet.experiments.manifest import read_manifest
    from lpgnet.experiments.record import Sources, stale_reason

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the manifest's paths are relative to the repository root
    meta, tables = read_manifest(root / "experiments" / "iemocap.yaml")
    src = Sources(root / "runs", root / meta["record_dir"])
    kept = 0
    for t in tables:
        for r in t.rows:
            load_config(root / r.config, r.set)
            path = src.record_path(t, r)
            if path is not None and path.exists():
                why = stale_reason(r, json.loads(path.read_text()))  # an unfinished row may be kept, as such
                assert why is None or why.startswith("incomplete"), (
                    f"{path} no longer answers row {t.id}/{r.key}: {why}"
                )
                kept += 1
    assert kept >= 5


def test_the_selection_table_correlates_selection_and_test_scores_across_runs(tmp_path):
    from lpgnet.config import dump_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: linear}\ntrain: {selection: crossval}\n")
    sel, test = [0.70, 0.72, 0.74, 0.76], [0.60, 0.63, 0.62, 0.66]
    runs = [
        {"seed": s, "fold": None, "valid": {"weighted_f1": v}, "test": {"weighted_f1": t}}
        for s, (v, t) in enumerate(zip(sel, test))
    ]
    block = lambda xs: {"weighted_f1": {"mean": statistics.fmean(xs), "std": statistics.stdev(xs), "n": 4}}  # noqa: E731
    # rows x, z, w: the same runs, their means shifted (0.73, 0.74, 0.75 against 0.6275, 0.6475, 0.6375)
    for key, (dv, dt) in {"x": (0.0, 0.0), "z": (0.01, 0.02), "w": (0.02, 0.01)}.items():
        (tmp_path / "runs" / "s" / key).mkdir(parents=True)
        (tmp_path / "runs" / "s" / key / "summary.json").write_text(
            json.dumps(
                {
                    "runs": runs,
                    "seeds": [0, 1, 2, 3],
                    "folds": None,
                    "config_yaml": dump_config(load_config(cfg)),
                    "valid": block([v + dv for v in sel]),
                    "test": block([t + dt for t in test]),
                }
            )
        )
    m = tmp_path / "m.yaml"
    rows = ", ".join(f"{{name: {k.upper()}, key: {k}, config: {cfg}, seeds: 4}}" for k in "xyzw")
    m.write_text(
        f"runs_dir: {tmp_path / 'runs'}\ntables:\n  - id: s\n    kind: selection\n    title: S\n    rows: [{rows}]\n"
    )
    text = results_page(m)
    r = float(np.corrcoef(sel, test)[0, 1])
    assert f"| X | crossval | 4 | 73.00 ± 2.58 | 62.75 ± 2.50 | +10.25 | {r:+.2f} |" in text
    assert "| Y | not run yet |" in text
    # across the configurations of one rule (three rows at least), after the fact
    assert "Across these 3 crossval rows, mean selection wF1 and mean test wF1 correlate at r = +0.50" in text


def test_a_study_table_says_whether_valid_tracks_test_across_its_rows(tmp_path):
    from lpgnet.config import dump_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: linear}\n")
    means = {"a": (0.80, 0.70), "b": (0.82, 0.69), "c": (0.84, 0.72)}
    for key, (v, t) in means.items():
        block = lambda x: {k: {"mean": x, "std": 0.0, "n": 1} for k in HEADLINE}  # noqa: E731
        (tmp_path / "runs" / "s" / key).mkdir(parents=True)
        (tmp_path / "runs" / "s" / key / "summary.json").write_text(
            json.dumps(
                {
                    "runs": [{"seed": 0}],
                    "seeds": [0],
                    "folds": None,
                    "config_yaml": dump_config(load_config(cfg)),
                    "valid": block(v),
                    "test": block(t),
                }
            )
        )
    rows = ", ".join(f"{{name: {k}, key: {k}, config: {cfg}, seeds: 1}}" for k in means)
    m = tmp_path / "m.yaml"
    m.write_text(f"runs_dir: {tmp_path / 'runs'}\ntables:\n  - {{id: s, kind: study, title: S, rows: [{rows}]}}\n")
    r = float(np.corrcoef([0.80, 0.82, 0.84], [0.70, 0.69, 0.72])[0, 1])
    assert f"Across these 3 rows, mean selection wF1 and mean test wF1 correlate at r = {r:+.2f}" in results_page(m)


def test_a_study_row_is_compared_with_its_base_by_selection_score_paired_by_seed(tmp_path):
    """The adoption rule reads selection scores only: row b's selection wF1 is above the
    base's by 0.01 on every seed (adopted, whatever its test score), row c's by 0.002."""
    from lpgnet.config import dump_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: linear}\n")
    base = [0.70, 0.72, 0.74]
    for key, (gain, test) in {"a": (0.0, 0.70), "b": (0.01, 0.60), "c": (0.002, 0.90), "e": (0.05, 0.7)}.items():
        sel = [v + gain for v in base][: 1 if key == "e" else 3]
        runs = [
            {"seed": i, "fold": None, "valid": {"weighted_f1": v}, "test": {"weighted_f1": test}}
            for i, v in enumerate(sel)
        ]
        block = lambda x: {k: {"mean": x, "std": 0.0, "n": 3} for k in HEADLINE}  # noqa: E731
        (tmp_path / "runs" / "s" / key).mkdir(parents=True)
        (tmp_path / "runs" / "s" / key / "summary.json").write_text(
            json.dumps(
                {
                    "runs": runs,
                    "seeds": list(range(len(sel))),
                    "folds": None,
                    "config_yaml": dump_config(load_config(cfg)),
                    "valid": block(statistics.fmean(sel)),
                    "test": block(test),
                }
            )
        )
    rows = f"{{name: A, key: a, config: {cfg}}}, {{name: B, key: b, base: a, config: {cfg}}}, "
    rows += f"{{name: C, key: c, base: a, config: {cfg}}}, {{name: D, key: d, base: a, config: {cfg}}}, "
    rows += f"{{name: E, key: e, base: a, config: {cfg}, seeds: 1}}"
    m = tmp_path / "m.yaml"
    m.write_text(f"runs_dir: {tmp_path / 'runs'}\ntables:\n  - {{id: s, kind: study, title: S, rows: [{rows}]}}\n")
    text = results_page(m)
    assert "| A | 72.00 ± 0.00 |" in text and "| (base) |  |" in text
    assert "| 60.00 ± 0.00 | +1.00 [+1.00, +1.00], 3 | yes |" in text  # its test score plays no part
    assert "| 90.00 ± 0.00 | +0.20 [+0.20, +0.20], 3 | no |" in text
    assert "| D | not run yet |" in text
    assert "| +5.00, 1 pair (no interval) | not yet (1 pair) |" in text  # one seed has no spread to judge
    assert "- From A: the rule adopts B (+1.00) (2 of 4 changes measured on 2 seeds or more; threshold +0.50" in text


def test_the_retrain_table_sets_the_final_model_against_its_own_fold_models(tmp_path):
    """Per seed: the retrain's test accuracy, the mean of its fold models alone and their
    average, with paired intervals of the two differences; rows without fold-model scores
    (older or holdout runs) say so instead of showing zeros."""
    from lpgnet.config import dump_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: linear}\ntrain: {selection: crossval}\n")
    retrain, averaged = [0.78, 0.80, 0.79], [0.82, 0.83, 0.81]
    members = [[0.80, 0.81, 0.79, 0.80], [0.81, 0.82, 0.80, 0.81], [0.79, 0.80, 0.78, 0.79]]
    runs = [
        {
            "seed": s,
            "fold": None,
            "best_epoch": 10 + s,
            "valid": {"weighted_f1": 0.77},
            "test": {"accuracy": retrain[s]},
            "fold_models_test": {"members": {"accuracy": members[s]}, "ensemble": {"accuracy": averaged[s]}},
        }
        for s in range(3)
    ]
    for key, rs in {"x": runs, "old": [{k: v for k, v in r.items() if k != "fold_models_test"} for r in runs]}.items():
        (tmp_path / "runs" / "r" / key).mkdir(parents=True)
        (tmp_path / "runs" / "r" / key / "summary.json").write_text(
            json.dumps(
                {
                    "runs": rs,
                    "seeds": [0, 1, 2],
                    "folds": None,
                    "config_yaml": dump_config(load_config(cfg)),
                    "test": {"accuracy": {"mean": 0.79, "std": 0.01}},
                }
            )
        )
    m = tmp_path / "m.yaml"
    rows = ", ".join(f"{{name: {k.upper()}, key: {k}, config: {cfg}, seeds: 3}}" for k in ("x", "old", "new"))
    m.write_text(
        f"runs_dir: {tmp_path / 'runs'}\ntables:\n  - id: r\n    kind: retrain\n    title: R\n    rows: [{rows}]\n"
    )
    text = results_page(m)
    alone = [statistics.fmean(x) - y for x, y in zip(members, retrain)]  # +0.02, +0.01, +0.00
    assert statistics.fmean(alone) == pytest.approx(0.01)
    row = next(line for line in text.splitlines() if line.startswith("| X |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:7] == ["3", "11.0", "77.00 ± 0.00", "79.00 ± 1.00", "80.00 ± 1.00", "82.00 ± 1.00"]
    assert cells[7].startswith("+1.00 [") and cells[7].endswith("not resolved")  # 3 pairs, spread 1 point
    assert cells[8].startswith("+3.00 [+0.52, +5.48]") and "not resolved" not in cells[8]
    assert "| OLD | no fold-model scores in its runs |" in text
    assert "| NEW | not run yet |" in text


def test_the_provenance_section_reports_what_each_rows_runs_recorded(tmp_path):
    """Per row: the data hash, device and torch version its runs recorded; a run that
    lacks one (synthetic data has no file to hash; old runs predate the field) is
    counted, never filled in, and runs that disagree show every value."""
    import torch

    m = _quick_manifest(tmp_path, seeds_x=2)
    page = tmp_path / "R.md"
    assert main(["report", "--manifest", str(m), "--out", str(page), "--run"]) == 0

    def section() -> str:
        text = results_page(m, runs_dir=tmp_path / "nowhere")  # from the record alone
        return text.split("### Provenance of the record\n")[1]

    assert "0 of 2 rows record data, device and torch version for every run" in section()
    assert f"| a/x | 2 | not recorded | cpu | {torch.__version__} |" in section()
    path = tmp_path / "record" / "a" / "x.json"
    kept = json.loads(path.read_text())
    for r in kept["runs"]:
        r["data_sha256"] = "ab" * 32
    path.write_text(json.dumps(kept))
    assert "1 of 2 rows record" in section()
    assert f"| a/x | 2 | abababababab | cpu | {torch.__version__} |" in section()
    kept["runs"][0]["torch"] = "2.0.0"
    del kept["runs"][1]["device"]
    path.write_text(json.dumps(kept))
    assert "0 of 2 rows record" in section()
    assert f"| a/x | 2 | abababababab | cpu (not recorded for 1 of 2 runs) | 2.0.0, {torch.__version__} |" in section()
    # --only provenance re-renders just that section
    assert main(["report", "--manifest", str(m), "--out", str(page), "--only", "provenance"]) == 0
    assert page.read_text().count("### Provenance of the record") == 1


def test_the_committed_results_page_is_what_the_record_renders(tmp_path, monkeypatch):
    """docs/RESULTS.md regenerates byte for byte from experiments/results alone (no run
    directories, no data, no training): a row retrained or re-seeded without
    re-rendering, or a page edited by hand, fails here."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for part in ("experiments", "configs", "benchmarks"):  # a clean clone: the record, no runs/
        shutil.copytree(root / part, tmp_path / part)
    monkeypatch.chdir(tmp_path)
    figures = tmp_path / "figures"
    page = results_page("experiments/iemocap.yaml", figures=figures)
    committed = (root / "docs" / "RESULTS.md").read_text(encoding="utf-8")
    assert page == committed, "re-render it: lpgnet report --manifest experiments/iemocap.yaml --out docs/RESULTS.md"
    for png in figures.iterdir():  # every figure the page shows is committed beside it
        assert (root / "docs" / "figures" / png.name).is_file(), png.name
