"""``lpgnet analyze``: from raw recordings to the emotion of every utterance.

    lpgnet analyze --run runs/iemocap-text call.wav meeting.mp4 --out analysis/

For each recording: decode it (``lpgnet.recordings.audio``), find the speech
(voice-activity detection), tell the speakers apart (one per channel, or speaker
embeddings clustered), transcribe each utterance, compute the run's own features (the
encoders its training recorded, as ``lpgnet extract`` does), and run the model over the
whole conversation in order (``Predictor``; windowed for long ones). A ``--segments``
CSV (start, end, speaker, optional text) replaces the stages it covers.

Written per recording, atomically (``<stem>`` is the file name without its suffix):
``<stem>.jsonl`` (one ``lpgnet predict`` row per utterance, with start, end, speaker
and text), ``<stem>.csv``, ``<stem>.png`` (a timeline per speaker coloured by emotion)
and ``<stem>.html`` (the timeline with the transcript beside it); ``summary.json`` says
which recordings were analysed, which were skipped and why, and the seconds each stage
took (its real-time factor: compute seconds per second of audio).

A run whose features cannot be computed from a recording (the IEMOCAP bundle's
speech-classifier logits) is refused with the reason, or used through the
missing-modality path with ``--modalities text``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError, RunDirError
from ..files import atomic_path, write_json, write_text
from ..recordings.asr import AsrConfig, Transcriber, transcribe
from ..recordings.audio import Recording
from ..recordings.segments import Segment, read_segments
from ..recordings.speakers import SpeakerConfig, SpeakerEncoder, assign_speakers, drop_bleed, split_channels
from ..recordings.vad import VadConfig, load_vad, speech_segments
from .predict import Predictor

RECORDING_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".mp4", ".m4a", ".ogg", ".oga", ".opus", ".webm", ".aac", ".aif", ".aiff"}
)
STAGES = ("decode", "vad", "speakers", "asr", "features", "model")


@dataclass
class AnalyzeConfig:
    modalities: list[str] | None = None  # None: the run's own; a subset uses the missing-modality path
    vad: VadConfig = field(default_factory=VadConfig)
    speakers: SpeakerConfig = field(default_factory=SpeakerConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    max_seconds: float | None = None  # longer recordings are refused (the service's bound)


def find_recordings(inputs: list[str]) -> list[Path]:
    """The recordings named: files, and the audio / video files directly inside folders."""
    found: list[Path] = []
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            inside = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in RECORDING_SUFFIXES)
            if not inside:
                raise DataError(f"{p}: no recordings in this folder (expected {', '.join(sorted(RECORDING_SUFFIXES))})")
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise DataError(f"{p}: no such recording or folder")
    return list(dict.fromkeys(found))


class Analyzer:
    """A run and the recording stages it needs, loaded once, for any number of recordings."""

    def __init__(self, predictor: Predictor, cfg: AnalyzeConfig | None = None) -> None:
        self.predictor = predictor
        self.cfg = cfg = cfg or AnalyzeConfig()
        cfg.vad.validate("--vad")
        cfg.speakers.validate("--speakers")
        own = predictor.modalities
        use = tuple(cfg.modalities) if cfg.modalities else own
        if not use or any(m not in own for m in use):
            raise ConfigError(
                f"--modalities: expected a non-empty subset of the run's {', '.join(own)}; got {', '.join(use) or 'none'}"
            )
        computable = [m for m in own if getattr(predictor.encoders, m) is not None]
        for m in use:
            if m in computable:
                continue
            origin = (
                f"this run's {m} features {predictor.encoders.origin[m]}, so they cannot be computed from a recording"
            )
            if computable:
                other = computable[0]
                raise ConfigError(
                    f"{origin}: analyze with --modalities {other} (the {m} input is then missing for every "
                    f"utterance, and the model predicts from {other} alone through its gates), or train a run on "
                    "features lpgnet extract computes (docs/ANALYZE.md)"
                )
            raise ConfigError(
                f"{origin}, and no other input of it can be either: train a run on features lpgnet extract "
                "computes, or on text with a text encoder (docs/ANALYZE.md)"
            )
        self.use = use
        self._vad: Any = None
        self._speaker_encoder: SpeakerEncoder | None = None
        self._transcriber: Transcriber | None = None

    def load(self, segments_given: bool = False) -> dict[str, float]:
        """Load every stage this analysis will use now (else on first use); seconds per stage."""
        seconds = {}
        stages: list[tuple[str, Callable[[], Any]]] = []
        if not segments_given:
            stages.append(("vad", lambda: self.vad))
            if self.cfg.speakers.speakers != 1:  # a first embedding compiles Resemblyzer's feature code
                noise = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
                stages.append(("speakers", lambda: self.speaker_encoder.embed_windows(noise)))
        if "text" in self.use:
            stages += [
                ("asr", lambda: self.transcriber),
                ("text encoder", lambda: self.predictor.encoders.embed_text(["hello"])),
            ]
        if "audio" in self.use:
            stages.append(("audio encoder", lambda: self.predictor.encoders.embed_waves([np.zeros(16000, np.float32)])))
        for name, load in stages:
            t = time.perf_counter()
            load()
            seconds[name] = time.perf_counter() - t
        return seconds

    # ---------------------------------------------------------------- stages, loaded on first use

    @property
    def vad(self) -> Any:
        if self._vad is None:
            self._vad = load_vad()
        return self._vad

    @property
    def speaker_encoder(self) -> SpeakerEncoder:
        if self._speaker_encoder is None:
            self._speaker_encoder = SpeakerEncoder()
        return self._speaker_encoder

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = Transcriber(self.cfg.asr)
        return self._transcriber

    # ---------------------------------------------------------------- one recording

    def speaker_config(self, speakers: int | None = None) -> SpeakerConfig:
        """The speaker settings for one recording or call: the configured ones, with the
        number of speakers replaced when given (checked here, for a recording and for the
        service's uploads and live calls alike; the configured ones when the analyzer is built)."""
        if speakers is None:
            return self.cfg.speakers
        cfg = replace(self.cfg.speakers, speakers=speakers)
        try:
            cfg.validate()
        except ConfigError:  # only the count changed
            raise DataError(f"speakers: expected 1 to {cfg.max_speakers}, got {speakers}") from None
        return cfg

    def segment(
        self, rec: Recording, given: list[Segment] | None, clock: dict[str, float], speakers: int | None = None
    ) -> list[Segment]:
        """Speech segments with speakers and text: found, or ``given`` (filled in where it lacks)."""
        t = time.perf_counter()
        if given is not None:
            segments = [Segment(s.start, s.end, s.speaker, s.text) for s in given if s.start < rec.duration]
            split = False
        else:
            split = split_channels(rec, self.cfg.speakers.channels)
            channels: list[int | None] = list(range(rec.channels)) if split else [None]
            segments = [s for c in channels for s in speech_segments(rec, self.vad, self.cfg.vad, c)]
            segments.sort(key=lambda s: (s.start, s.end))
            if split:
                segments = drop_bleed(rec, segments, self.cfg.speakers.bleed)
        clock["vad"] += time.perf_counter() - t
        t = time.perf_counter()
        if segments and any(not s.speaker for s in segments):
            cfg = self.speaker_config(speakers)
            needs_encoder = not split and cfg.speakers != 1 and len(segments) > 1
            assign_speakers(rec, segments, cfg, split, self.speaker_encoder if needs_encoder else None)
        clock["speakers"] += time.perf_counter() - t
        t = time.perf_counter()
        todo = [s for s in segments if s.text is None]
        if "text" in self.use and todo:
            with tqdm(total=len(todo), desc="speech recognition", leave=False, file=sys.stderr, disable=None) as bar:
                transcribe(rec, todo, self.transcriber, progress=bar.update)
        clock["asr"] += time.perf_counter() - t
        return segments

    def utterances(self, rec: Recording, segments: list[Segment], clock: dict[str, float]) -> list[dict[str, Any]]:
        """The model's inputs for ``segments``: raw text, and audio vectors from the run's encoder."""
        t = time.perf_counter()
        rows: list[dict[str, Any]] = [{"speaker": s.speaker} for s in segments]
        said = [i for i, s in enumerate(segments) if s.text]
        if "text" in self.use and said:
            vectors = self.predictor.encoders.embed_text([segments[i].text for i in said])  # type: ignore[misc]
            for i, v in zip(said, vectors):
                rows[i][self.predictor.fields["text"]] = np.asarray(v)
        if "audio" in self.use:
            waves = [rec.read(s.start, s.end, s.channel) for s in segments]
            for row, v in zip(rows, self.predictor.encoders.embed_waves(waves)):
                row[self.predictor.fields["audio"]] = np.asarray(v)
        clock["features"] += time.perf_counter() - t
        return rows

    def analyze(
        self, path: str | Path, given: list[Segment] | None = None, name: str | None = None, speakers: int | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Predictions for every utterance of one recording, and its summary (stage seconds, counts).

        Raises ``DataError`` for a recording that cannot be analysed (undecodable, too long);
        a recording without speech gives no rows and a summary saying so. ``speakers``
        overrides the configured number of speakers for this recording."""
        path = Path(path)
        name = name or path.stem
        clock = dict.fromkeys(STAGES, 0.0)
        t = time.perf_counter()
        with Recording(path) as rec:
            clock["decode"] = time.perf_counter() - t
            if self.cfg.max_seconds is not None and rec.duration > self.cfg.max_seconds:
                raise DataError(f"{path}: {rec.duration:.0f} s of audio; at most {self.cfg.max_seconds:g} s accepted")
            summary: dict[str, Any] = {
                "recording": str(path),
                "seconds": round(rec.duration, 3),
                "channels": rec.channels,
            }
            segments = self.segment(rec, given, clock, speakers)
            if "text" in self.use and "audio" not in self.use:
                silent = [s for s in segments if not s.text]
                if silent:  # a text-only model has nothing to read for these: say so, do not guess
                    summary["no_words"] = len(silent)
                    segments = [s for s in segments if s.text]
            rows = self.utterances(rec, segments, clock) if segments else []
        out: list[dict[str, Any]] = []
        if rows:
            t = time.perf_counter()
            preds = self.predictor.predict(rows, where=str(path))
            clock["model"] = time.perf_counter() - t
            for i, (s, p) in enumerate(zip(segments, preds)):
                out.append(
                    {
                        "utt_id": f"{name}/{i}",
                        "dialog_id": name,
                        "turn": i,
                        "start": round(s.start, 3),
                        "end": round(s.end, 3),
                        "speaker": s.speaker,
                        "text": s.text,
                        **p,
                    }
                )
        summary["utterances"] = len(out)
        summary["speakers"] = sorted({r["speaker"] for r in out})
        summary["stage_seconds"] = {k: round(v, 3) for k, v in clock.items()}
        summary["real_time_factor"] = {k: round(v / rec.duration, 4) for k, v in clock.items()}
        if not out:
            summary["status"] = "skipped"
            summary["why"] = "no speech found" if not segments else "no words recognised in any utterance"
        else:
            summary["status"] = "analysed"
        return out, summary


# --------------------------------------------------------------------------- outputs


def rows_csv(rows: list[dict[str, Any]], labels: list[str], modalities: tuple[str, ...]) -> str:
    """The predictions as CSV: times, speaker, text, label, confidence, each class's probability, gates."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    gates = [m for m in modalities if any(m in r.get("gates", {}) for r in rows)]
    writer.writerow(
        ["start", "end", "speaker", "text", "label", "confidence"]
        + [f"p_{c}" for c in labels]
        + [f"gate_{m}" for m in gates]
        + ["missing"]
    )
    for r in rows:
        writer.writerow(
            [r["start"], r["end"], r["speaker"], r["text"] or "", r["label"], round(r["probs"][r["label"]], 4)]
            + [round(r["probs"][c], 4) for c in labels]
            + [round(r["gates"][m], 4) if "gates" in r else "" for m in gates]
            + [" ".join(r["missing"])]
        )
    return buf.getvalue()


def write_outputs(
    rows: list[dict[str, Any]], stem: Path, labels: list[str], modalities: tuple[str, ...], title: str
) -> list[Path]:
    """``stem``.jsonl, .csv, .png and .html, each written atomically."""
    from .timeline import html_page, plot_timeline

    paths = [stem.with_name(stem.name + s) for s in (".jsonl", ".csv", ".png", ".html")]
    write_text(paths[0], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_text(paths[1], rows_csv(rows, labels, modalities))
    png = plot_timeline(rows, labels, title)
    with atomic_path(paths[2]) as tmp:
        tmp.write_bytes(png)
    write_text(paths[3], html_page(rows, labels, title, png))
    return paths


def output_stems(recordings: list[Path], out: Path) -> list[Path]:
    """``out/<stem>`` per recording; recordings of the same stem get their suffix too (a.wav, a.mp3)."""
    stems = [r.stem for r in recordings]
    return [out / (r.stem if stems.count(r.stem) == 1 else r.name) for r in recordings]


def run_analyze(
    run: str,
    inputs: list[str],
    out: str,
    cfg: AnalyzeConfig | None = None,
    segments: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> dict[str, Any]:
    """``lpgnet analyze``: every recording of ``inputs`` into ``out`` (see the module doc)."""
    recordings = find_recordings(inputs)
    given = read_segments(segments) if segments else None
    if given is not None:
        names = {r.name for r in recordings} | {r.stem for r in recordings}
        unknown = sorted(k for k in given if k and k not in names)
        if unknown:
            raise DataError(
                f"{segments}: column 'recording' names {unknown[0]!r}, which is not among the recordings given"
            )
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir}: is a file; expected a folder for the analysis")
    stems = output_stems(recordings, out_dir)
    if not overwrite:
        if (out_dir / "summary.json").exists():
            raise RunDirError(f"{out_dir / 'summary.json'}: exists; pass --overwrite to replace it (or choose --out)")
        for stem in stems:
            for suffix in (".jsonl", ".csv", ".png", ".html"):
                if stem.with_name(stem.name + suffix).exists():
                    raise RunDirError(f"{stem.with_name(stem.name + suffix)}: exists; pass --overwrite to replace it")
    predictor = Predictor.from_run(run)
    analyzer = Analyzer(predictor, cfg)
    analyzer.load(segments_given=given is not None and all(s.speaker for v in given.values() for s in v))
    summaries = []
    for path, stem in tqdm(list(zip(recordings, stems)), desc="recordings", file=sys.stderr, disable=None):
        mine = None if given is None else given.get(path.name, given.get(path.stem, given.get("")))
        try:
            rows, summary = analyzer.analyze(path, mine, name=stem.name)
        except DataError as exc:  # unreadable or too long: skipped, the others still analysed
            summaries.append({"recording": str(path), "status": "skipped", "why": str(exc)})
            log(f"skipped {path}: {exc}")
            continue
        if rows:
            summary["outputs"] = [str(p) for p in write_outputs(rows, stem, predictor.labels, analyzer.use, path.name)]
            log(f"{path}: {len(rows)} utterances, {len(summary['speakers'])} speakers -> {stem}.jsonl/.csv/.png/.html")
        else:
            log(f"skipped {path}: {summary['why']}")
        summaries.append(summary)
    done = [s for s in summaries if s["status"] == "analysed"]
    result = {
        "run": str(run),
        "modalities": list(analyzer.use),
        "analysed": len(done),
        "skipped": len(summaries) - len(done),
        "recordings": summaries,
    }
    write_json(out_dir / "summary.json", result)
    if not done:
        raise DataError(f"no recording could be analysed (reasons in {out_dir / 'summary.json'})")
    return result
