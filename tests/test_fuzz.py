"""Fuzzing, not examples (hypothesis): whatever the input, the outcome is a result with
finite probabilities or a one-line ``LPGNetError`` naming the place, never another
exception and never a non-finite output. Each fuzzer's case count is its
``max_examples`` (listed in docs/BAD_INPUT.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import quick_run, write_corpus
from lpgnet.config import load_config
from lpgnet.data.jsonl import read_conversations
from lpgnet.errors import LPGNetError
from lpgnet.serving.predict import Predictor

CASES = 200
FUZZ = settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.integers(min_value=-(10**400), max_value=10**400),
)
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=8), numbers, st.lists(st.text(max_size=3), max_size=3))
vectors = st.one_of(st.lists(numbers, min_size=0, max_size=8), junk)


def one_line(exc: LPGNetError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    write_corpus(folder)
    return Predictor.from_run(quick_run(folder))


def check_predictions(rows: list[dict]) -> None:
    for row in rows:
        probs = list(row["probs"].values())
        assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs) and abs(sum(probs) - 1.0) < 1e-4


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@FUZZ
@given(st.binary(max_size=400))
def test_conversation_readers_on_arbitrary_bytes(tmp_path_factory, suffix, data):
    path = tmp_path_factory.mktemp("r") / f"c{suffix}"
    path.write_bytes(data)
    try:
        rows = read_conversations(path)  # JSONL or CSV by suffix
    except LPGNetError as exc:
        one_line(exc)
        assert str(path) in str(exc)
    else:
        assert all(isinstance(obj, dict) and line >= 1 for line, obj in rows)


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
sections = st.dictionaries(
    st.sampled_from(["model", "data", "train", "loss", "base", "extra"]),
    st.one_of(
        yaml_values,
        st.dictionaries(st.sampled_from(["name", "d_model", "epochs", "lr", "source", "x"]), yaml_values, max_size=3),
    ),
    max_size=4,
)


@FUZZ
@given(st.one_of(sections, yaml_values), st.binary(max_size=60))
def test_config_loader_on_arbitrary_yaml_and_bytes(tmp_path_factory, tree, noise):
    import yaml

    folder = tmp_path_factory.mktemp("y")
    for name, text in (("tree.yaml", yaml.safe_dump(tree)), ("noise.yaml", None)):
        path = folder / name
        path.write_text(text) if text is not None else path.write_bytes(noise)
        try:
            load_config(path)
        except LPGNetError as exc:
            one_line(exc)


# the run reads 6 text and 3 audio values: vectors of those sizes most of the time, so
# the model itself is reached with extreme values, not only the shape checks
def sized(n: int):
    return st.one_of(
        st.lists(numbers, min_size=n, max_size=n), st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n), vectors
    )


utterance = st.fixed_dictionaries(
    {},
    optional={"tf": sized(6), "af": sized(3), "text": junk, "speaker": junk, "turn": junk, "audio_path": junk},
)


@FUZZ
@given(st.lists(utterance, min_size=0, max_size=12))
def test_predict_on_arbitrary_utterances(predictor, utterances):
    try:
        rows = predictor.predict(utterances)
    except LPGNetError as exc:
        one_line(exc)
    else:
        assert len(rows) == len(utterances)
        check_predictions(rows)


@FUZZ
@given(st.lists(utterance, min_size=1, max_size=8))
def test_streaming_session_on_arbitrary_utterances(predictor, utterances):
    session = predictor.stream(max_utterances=5)
    kept = 0
    for u in utterances:
        try:
            check_predictions([session.add(u)])
            kept += 1
        except LPGNetError as exc:
            one_line(exc)
        assert session.seen == kept  # a failed utterance is never kept


def test_an_enormous_dialogue_is_answered_or_refused_clearly(predictor):
    good = {"tf": [0.1] * 6, "af": [0.2] * 3}
    rows = predictor.predict([good] * 3000)
    check_predictions(rows)
