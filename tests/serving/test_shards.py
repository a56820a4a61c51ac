"""Sharded prediction: ``--shard i/n`` jobs, or torchrun processes, each write their share
of the conversations; merged, they are byte for byte the one-process output. A finished
shard is not redone; a missing one stops the merge."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import quick_run, write_corpus
from lpgnet.cli import main
from lpgnet.data.jsonl import iter_dialogues
from lpgnet.data.shards import dialogue_key, select_shard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A run, and a conversation file whose dialogues' lines are interleaved."""
    root = tmp_path_factory.mktemp("shards")
    rows = write_corpus(root)
    run = quick_run(root)
    random.Random(0).shuffle(rows)
    (root / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root, run


@given(st.lists(st.sampled_from("abcdefg"), max_size=30), st.integers(1, 5))
def test_shards_partition_the_items_by_group_in_order(groups, n):
    """Every item lands in exactly one shard, a group's items all in the same one, each
    shard keeps the input's order, and group k (order of first appearance) is in shard k mod n."""
    items = list(enumerate(groups))
    shards = [list(select_shard(items, (i, n), group=lambda item: item[1])) for i in range(n)]
    assert sorted(x for s in shards for x in s) == items
    first = list(dict.fromkeys(groups))
    for i, shard in enumerate(shards):
        assert shard == sorted(shard)
        assert {g for _, g in shard} == {g for k, g in enumerate(first) if k % n == i}


def test_dialogues_are_read_one_at_a_time_in_order_of_first_appearance(corpus):
    root, _ = corpus
    rows = [json.loads(line) for line in (root / "mixed.jsonl").read_text().splitlines()]
    first = list(dict.fromkeys(r["dialog_id"] for r in rows))
    read = list(iter_dialogues(root / "mixed.jsonl"))
    assert [d for d, _ in read] == first and sum(len(u) for _, u in read) == len(rows)
    assert [d for d, _ in iter_dialogues(root / "mixed.jsonl", (1, 3))] == first[1::3]


def test_utterances_without_a_dialog_id_are_one_conversation(tmp_path):
    """Every grouped reader (JSONL dialogues, extract and predict shards) keys a dialogue
    the same way: its dialog_id as a string, or one conversation when there is none."""
    assert dialogue_key({"dialog_id": 7}) == dialogue_key({"dialog_id": "7"}) == "7"
    assert dialogue_key({"text": "hi"}) == "conversation"
    path = tmp_path / "plain.jsonl"
    path.write_text("".join(json.dumps({"turn": k, "text": "hi"}) + "\n" for k in range(3)))
    [(dialog_id, utterances)] = list(iter_dialogues(path))
    assert dialog_id == "conversation" and [u["turn"] for _, u in utterances] == [0, 1, 2]


def test_shards_merged_are_the_one_process_output(corpus, capsys):
    root, run = corpus
    base = ["predict", "--run", str(run), "--input", str(root / "mixed.jsonl")]
    assert main([*base, "--out", str(root / "one.jsonl")]) == 0
    out = root / "parts" / "p.jsonl"
    for i in (2, 0):
        assert main([*base, "--out", str(out), "--shard", f"{i}/3"]) == 0
    assert main(["merge", "--out", str(out), "--shards", "3"]) == 2
    err = capsys.readouterr().err
    assert "shard output missing: " in err and "p.shard-1-of-3.jsonl (run those shards first)" in err
    assert main([*base, "--out", str(out), "--shard", "1/3"]) == 0
    assert main([*base, "--out", str(out), "--shard", "1/3"]) == 0
    assert "already done" in capsys.readouterr().err
    assert main(["merge", "--out", str(out), "--shards", "3"]) == 0
    assert out.read_bytes() == (root / "one.jsonl").read_bytes()
    assert main([*base, "--out", str(out), "--shard", "3/3"]) == 2


@pytest.mark.skipif(not (Path(sys.executable).parent / "torchrun").exists() and shutil.which("torchrun") is None,
                    reason="torchrun is not on the PATH")  # fmt: skip
def test_torchrun_predict_merges_its_shards(corpus):
    root, run = corpus
    if not (root / "one.jsonl").exists():
        assert (
            main(["predict", "--run", str(run), "--input", str(root / "mixed.jsonl"), "--out", str(root / "one.jsonl")])
            == 0
        )
    exe = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    out = root / "tr.jsonl"
    cmd = [exe, "--standalone", "--nproc_per_node", "2", "-m", "lpgnet", "--", "predict", "--run", str(run),
           "--input", str(root / "mixed.jsonl"), "--out", str(out)]  # fmt: skip
    # "--": torchrun would otherwise take lpgnet's --run for an abbreviation of its --run-path
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes() == (root / "one.jsonl").read_bytes()
    assert not list(root.glob("tr.shard-*"))  # the pieces are gone once merged


@pytest.mark.skipif(not (Path(sys.executable).parent / "torchrun").exists() and shutil.which("torchrun") is None,
                    reason="torchrun is not on the PATH")  # fmt: skip
def test_torchrun_extract_writes_the_one_process_features(tmp_path, tiny_bert):
    rows = [{"dialog_id": f"d{d}", "turn": t, "text": f"i am happy {d} {t}"} for d in range(5) for t in range(3)]
    (tmp_path / "talk.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        "extract",
        "--data",
        str(tmp_path / "talk.jsonl"),
        "--text-encoder",
        str(tiny_bert),
        "--text-pooling",
        "mean",
    ]
    assert main([*args, "--out", str(tmp_path / "one.jsonl"), "--cache-dir", str(tmp_path / "c1")]) == 0
    exe = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [exe, "--standalone", "--nproc_per_node", "2", "-m", "lpgnet", "--", *args,
           "--out", str(tmp_path / "two.jsonl"), "--cache-dir", str(tmp_path / "c2")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = ([json.loads(x) for x in (tmp_path / f).read_text().splitlines()] for f in ("one.jsonl", "two.jsonl"))
    assert [r["turn"] for r in two] == [r["turn"] for r in one] and [r["dialog_id"] for r in two] == [
        r["dialog_id"] for r in one
    ]
    import numpy as np

    np.testing.assert_allclose([r["text_emb"] for r in two], [r["text_emb"] for r in one], rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob("two.shard-*"))  # the shards' markers are gone
