"""The docs run: every fenced Python and shell example in the README and docs/ is
executed, as a reader would paste it. Python examples run in a fresh folder holding a
finished demo run (``runs/demo``). Shell examples run in order, page by page, with
``bash -euo pipefail``, the installed ``lpgnet`` on the PATH, in one folder per page:
the README's starts empty (its first command trains ``runs/demo``; the venv-and-install
prefix of a fresh-machine command is left out, as the package is installed here),
every other page's holds a finished demo run and a ``conversation.jsonl`` for it.
Background processes an example starts (``lpgnet serve &``) are killed after it.
An example that cannot run here is marked ``<!-- not run: reason -->`` on the line
before its fence, and that reason is reported as the skip."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lpgnet import load_config, train

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "RESULTS.md")]
INSTALL = re.compile(r"^python3 -m venv \.venv && \. \.venv/bin/activate && pip install [^&]*&& ")


def blocks(language: str) -> re.Pattern:
    return re.compile(rf"(?:<!-- not run: (?P<why>[^>]*) -->\n)?```{language}\n(?P<code>.*?)```", re.S)


def examples(language: str = "python", with_page: bool = False) -> list:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in blocks(language).finditer(text):
            line = text.count("\n", 0, m.start("code"))
            args = (page.name, m.group("code"), m.group("why")) if with_page else (m.group("code"), m.group("why"))
            found.append(pytest.param(*args, id=f"{page.name}:{line}"))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with a finished (quick) demo run where the README's first command puts one."""
    folder = tmp_path_factory.mktemp("docs")
    quick = ["train.epochs=2", "train.progress=false"]
    train(load_config("synthetic", quick), out_dir=folder / "runs" / "demo", log=lambda m: None)
    return folder


def test_the_docs_have_python_and_shell_examples():
    assert len(examples()) >= 2 and len(examples("bash")) >= 10


@pytest.mark.parametrize("code,why", examples())
def test_python_example_runs(code, why, workdir):
    if why:
        pytest.skip(why)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def page_dirs(workdir, tmp_path_factory):
    """One folder per page, made on first use and kept for the page's later examples."""
    made: dict[str, Path] = {}

    def folder(page: str) -> Path:
        if page not in made:
            made[page] = tmp_path_factory.mktemp(page.replace(".", "_"))
            if page != "README.md":
                shutil.copytree(workdir / "runs", made[page] / "runs")
                # feature sizes of the demo run: the built-in data's 64 text and 32 audio values
                lines = [
                    {
                        "dialog_id": "call-1",
                        "turn": t,
                        "speaker": "AB"[t % 2],
                        "text_emb": [0.1] * 64,
                        "audio_emb": [0.2] * 32,
                    }
                    for t in range(3)
                ]
                (made[page] / "conversation.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return made[page]

    return folder


@pytest.mark.parametrize("page,code,why", examples("bash", with_page=True))
def test_shell_example_runs(page, code, why, page_dirs):
    if why:
        pytest.skip(why)
    code = INSTALL.sub("", code)
    env = {
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    folder = page_dirs(page)
    log = folder / ".example.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: whatever it starts is killed with it
        )
        try:
            returncode = proc.wait(timeout=600)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert returncode == 0, log.read_text()[-3000:]
