"""``lpgnet serve``: a trained run as a small HTTP JSON service (FastAPI + uvicorn).

    GET    /health                      model, labels, modalities, the input fields it reads
    POST   /predict                     {"utterances": [{...}, ...]} -> {"predictions": [...]}
    POST   /sessions                    -> {"session_id": ...}            (incremental mode)
    POST   /sessions/{id}/utterances    {...one utterance...} -> its prediction, from it and the ones before
    DELETE /sessions/{id}
    POST   /analyze?speakers=N          body: a recording (any format ffmpeg reads) -> {"utterances": [...], "summary": {...}}
    POST   /calls?channels=C&speakers=N -> {"call_id": ...}                  (a live call)
    POST   /calls/{id}/audio            body: 16-bit PCM, 16 kHz, C channels interleaved -> {"utterances": [finished ones]}
    POST   /calls/{id}/end              -> {"utterances": [the rest]}; the call is closed

An utterance is the same object ``lpgnet predict`` reads (feature vectors under the run's
field names, or raw ``text``). Requests are bounded (body bytes, utterances per
conversation, open sessions, oldest dropped first); bad input is a 4xx whose ``error``
says what is wrong; anything unexpected is a 500 with a generic message, logged on the
server, never a stack trace to the client. ``audio_path`` is refused: a service must not
read files a client names. Audio (``/analyze``, ``/calls``) is bounded separately, by
bytes (``max_audio_bytes``) and by seconds (``max_audio_seconds`` per recording or call),
and answers with the rows ``lpgnet analyze`` writes (``lpgnet.serving.analyze``,
``lpgnet.serving.calls``); a run whose features cannot be computed from audio answers
422 with the reason (start the service with ``--modalities text`` to use such a run).
"""

# (no "from __future__ import annotations": FastAPI reads the request model from the real annotations)
import functools
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, LPGNetError
from ..features.audio import SAMPLE_RATE
from .analyze import AnalyzeConfig, Analyzer
from .calls import CallSession
from .predict import Predictor, StreamingSession
from .store import MAX_SESSIONS, Conflict, MemoryStore, SqliteStore

log = logging.getLogger("lpgnet.serving.serve")


def create_app(
    predictor: Predictor,
    max_body_bytes: int = 2_000_000,
    max_utterances: int = 500,
    max_sessions: int = MAX_SESSIONS,
    max_audio_bytes: int = 50_000_000,
    max_audio_seconds: float = 3600.0,
    analyze: AnalyzeConfig | None = None,
    session_store: MemoryStore | SqliteStore | None = None,
    live_calls: bool = True,
) -> Any:
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
        from pydantic import BaseModel, Field
    except ImportError:
        raise ConfigError("lpgnet serve needs FastAPI and uvicorn: pip install 'lpgnet[serve]'") from None
    predictor.accepts_paths = False  # its messages then never suggest audio_path

    class ErrorBody(BaseModel):
        error: str  # one line: what is wrong and where

    def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
        """The error answers a route can give, published in its OpenAPI schema."""
        why = {404: "unknown session", 409: "the session changed meanwhile", 413: "request too large",
               422: "input the model cannot use", 501: "not available in this configuration"}  # fmt: skip
        return {code: {"model": ErrorBody, "description": why[code]} for code in codes}

    class Conversation(BaseModel):
        utterances: list[dict[str, Any]] = Field(min_length=1, max_length=max_utterances)

    app = FastAPI(title="lpgnet", description="Emotion recognition in conversations (LPGNet)")
    lock = threading.Lock()  # one prediction at a time: torch uses the cores already
    store = session_store or MemoryStore(max_sessions)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": message})

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        path = request.url.path
        audio = path == "/analyze" or (path.startswith("/calls/") and path.endswith("/audio"))
        limit = max_audio_bytes if audio else max_body_bytes
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > limit):
            return error(413, f"request body over {limit} bytes")
        if size is None and request.method in ("POST", "PUT"):
            body = await request.body()  # chunked upload: read, bounded
            if len(body) > limit:
                return error(413, f"request body over {limit} bytes")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        status = 413 if first.get("type") == "too_long" else 422
        return error(status, f"{where or 'body'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(LPGNetError)
    async def bad_input(request: Request, exc: LPGNetError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal error (logged on the server)")

    def check(utterances: list[dict[str, Any]]) -> None:
        for i, u in enumerate(utterances):
            if "audio_path" in u:
                raise DataError(f"utterances[{i}].audio_path: not accepted by the service; send audio feature vectors")

    @app.get("/health", responses=errors(413))
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": predictor.model.config.name,
            "labels": predictor.labels,
            "modalities": list(predictor.modalities),
            "fields": {m: predictor.fields[m] for m in predictor.modalities},
            "causal": bool(getattr(predictor.model.config, "causal", False)),
            "max_utterances": max_utterances,
        }

    @app.post("/predict", responses=errors(413, 422))
    def predict(conversation: Conversation) -> dict[str, Any]:
        check(conversation.utterances)
        with lock:
            return {"predictions": predictor.predict(conversation.utterances, where="request")}

    @app.post("/sessions", responses=errors(413))
    def open_session() -> dict[str, str]:
        sid = uuid.uuid4().hex
        store.create(sid, predictor.stream(max_utterances).state())
        return {"session_id": sid}

    @app.post("/sessions/{sid}/utterances", responses=errors(404, 409, 413, 422))
    def add(sid: str, utterance: dict[str, Any]) -> Any:
        check([utterance])
        found = store.load(sid)
        if found is None:
            return error(404, f"session {sid!r}: not found (expired or never opened)")
        version, state = found
        session = StreamingSession.from_state(predictor, state, max_utterances)
        if session.full:
            return error(413, f"session {sid!r}: at most {max_utterances} utterances")
        with lock:
            prediction = session.add(utterance, where="session")  # bad input is not kept
        try:
            store.save(sid, version, session.state())
        except Conflict:
            return error(409, f"session {sid!r}: another request changed it meanwhile; send utterances one at a time")
        return prediction

    @app.delete("/sessions/{sid}", responses=errors(404, 413))
    def close(sid: str) -> Any:
        if not store.delete(sid):
            return error(404, f"session {sid!r}: not found")
        return {"closed": sid}

    # ------------------------------------------------------------------ audio
    calls: OrderedDict[str, CallSession] = OrderedDict()

    @functools.cache
    def analyzer() -> Analyzer:
        """The recording stages, loaded on the first audio request (a run that cannot
        take audio says why, as a 422, on every audio request: a raise is not cached)."""
        return Analyzer(predictor, replace(analyze or AnalyzeConfig(), max_seconds=max_audio_seconds))

    @app.post("/analyze", responses=errors(413, 422))
    async def analyze_recording(request: Request, speakers: int | None = None) -> Any:
        body = await request.body()
        if not body:
            raise DataError("body: expected a recording (the bytes of an audio or video file), got nothing")
        with lock:
            analyzer().speaker_config(speakers)  # a wrong count is refused before the upload is written
        with tempfile.TemporaryDirectory(prefix="lpgnet-upload-") as tmp:
            path = Path(tmp) / "upload"
            path.write_bytes(body)
            with lock:
                try:
                    rows, summary = analyzer().analyze(path, name="upload", speakers=speakers)
                except DataError as exc:  # name the upload, not the server's temporary file
                    raise DataError(str(exc).replace(f"file:{path}", "body").replace(str(path), "body")) from None
        return {"utterances": rows, "summary": {k: v for k, v in summary.items() if k != "recording"}}

    @app.post("/calls", responses=errors(413, 422, 501))
    def open_call(channels: int = 1, speakers: int | None = None) -> Any:
        if not live_calls:
            return error(
                501,
                "live calls keep their audio in one process: serve with --workers 1 for /calls (or route a "
                "call's requests to one worker)",
            )
        with lock:
            call = CallSession(analyzer(), channels=channels, speakers=speakers)
            cid = uuid.uuid4().hex
            calls[cid] = call
            while len(calls) > max_sessions:
                calls.popitem(last=False)
        return {"call_id": cid}

    @app.post("/calls/{cid}/audio", responses=errors(404, 413, 422))
    async def call_audio(cid: str, request: Request) -> Any:
        body = await request.body()
        with lock:
            if cid not in calls:
                return error(404, f"call {cid!r}: not found (ended, expired or never opened)")
            call = calls[cid]
            if call.seconds + len(body) / (2 * call.channels * SAMPLE_RATE) > max_audio_seconds:
                return error(413, f"call {cid!r}: at most {max_audio_seconds:g} s of audio")
            rows = call.add(body)
            calls.move_to_end(cid)
        return {"utterances": rows}

    @app.post("/calls/{cid}/end", responses=errors(404, 413, 422))
    def end_call(cid: str) -> Any:
        with lock:
            call = calls.pop(cid, None)
            if call is None:
                return error(404, f"call {cid!r}: not found (ended, expired or never opened)")
            return {"utterances": call.end()}

    return app


def serve(
    run: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    session_store: str | None = None,
    threads: int | None = None,
    **limits: Any,
) -> None:
    """Serve ``run``; ``workers`` > 1 runs that many processes (uvicorn's workers) sharing
    their sessions through an SQLite file (``session_store``, default a temporary one)."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("lpgnet serve needs FastAPI and uvicorn: pip install 'lpgnet[serve]'") from None
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1")
    check_port(host, port)
    routes = "GET /health, POST /predict, /sessions, /analyze" + (", /calls" if workers == 1 else "")
    if workers == 1:
        if threads:
            torch_threads(threads)
        store = SqliteStore(session_store, limits.get("max_sessions", MAX_SESSIONS)) if session_store else None
        app = create_app(Predictor.from_run(run), session_store=store, **limits)
        print(f"serving {run} on http://{host}:{port} ({routes})", file=sys.stderr)
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    Predictor.from_run(run)  # a run that cannot be served is refused here, not in every worker
    path = session_store or str(Path(tempfile.mkdtemp(prefix="lpgnet-serve-")) / "sessions.sqlite")
    analyze = limits.pop("analyze", None)
    os.environ[ENV] = json.dumps(
        {
            "run": str(run),
            "limits": limits,
            "store": path,
            "modalities": analyze.modalities if analyze is not None else None,
            "threads": threads or max(1, (os.cpu_count() or 1) // workers),
        }
    )
    print(
        f"serving {run} on http://{host}:{port} with {workers} workers, sessions in {path} ({routes})", file=sys.stderr
    )
    uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning")


ENV = "LPGNET_SERVE"  # what the parent tells each worker process (JSON)


def app_from_env() -> Any:
    """One worker's app (uvicorn calls this in each worker process): the run, the limits,
    the shared session store and the torch threads from ``LPGNET_SERVE``."""
    spec = json.loads(os.environ[ENV])
    torch_threads(spec["threads"])
    limits = spec["limits"]
    store = SqliteStore(spec["store"], limits.get("max_sessions", MAX_SESSIONS))
    analyze = AnalyzeConfig(modalities=spec["modalities"])
    return create_app(Predictor.from_run(spec["run"]), session_store=store, analyze=analyze, live_calls=False, **limits)


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken before anything is loaded or announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
