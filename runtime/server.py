"""An OpenAI-compatible HTTP server for one engine (`tracetutor serve`).

Endpoints: `GET /v1/models` and `POST /v1/chat/completions` (streaming and not). Any OpenAI
client can talk to it:

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model="tiny-tutor", messages=[{"role": "user", "content": "…"}])

What differs from OpenAI:

- The models are trained on one-turn problems, so the question is the last user message;
  system prompts, earlier turns and assistant messages are ignored.
- `n` must be 1; `logprobs`, tools and response formats are not supported (the fields are
  ignored, except `n`). The `model` field is accepted whatever it says and the reply names the
  served model.
- `max_tokens` (or `max_completion_tokens`) defaults to the runtime's DEFAULT_MAX_NEW_TOKENS,
  cut to what the context leaves.
  A prompt that does not fit the context with `max_tokens` is a 400 that gives both numbers.
- A request body over MAX_BODY_BYTES is a 413, refused as soon as its length is known.
- `top_k` is accepted as an extra field, and so is `check` (a boolean): checked arithmetic,
  where the result of a false step is replaced by its exact value (Settings.check).
- A completion carries a non-standard `tracetutor` field: `{"steps", "answer", "stats"}` (in a
  stream, on the chunk that carries `finish_reason`).

The engine is not thread-safe: every generation runs on one worker thread per engine, so
concurrent requests queue instead of running at once. Streams are bridged from that thread to
the event loop with a queue, so a long generation never blocks other requests from being
accepted (they wait their turn), and a client that disconnects stops its generation. A
question too long for the context is refused before it reaches that thread: one longer in
bytes than the context's tokens could cover is refused without tokenizing it, so a huge
prompt never holds up the queue.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose types
# (Request) are imported inside build_app.
import asyncio
import errno
import json
import socket
import sys
import threading
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .engine import Engine
from .types import DEFAULT_MAX_NEW_TOKENS, Answer, Done, Settings, Step, Token
from .variants import TORCH

MAX_STOP = 4
MAX_BODY_BYTES = 1 << 20
"""The largest request body read (1 MiB); a question that fits these models' contexts is far
smaller."""


def _require():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"the OpenAI-compatible server needs fastapi and uvicorn ({e.name} is missing); "
            "install them with: pip install 'tracetutor[runtime]' (or pip install fastapi uvicorn)"
        ) from e


# One worker thread per engine: engines are cached per process, so two apps over the same
# engine still share (and queue on) the same thread.
_EXECUTORS: "weakref.WeakKeyDictionary[Engine, ThreadPoolExecutor]" = weakref.WeakKeyDictionary()
_EXECUTORS_LOCK = threading.Lock()


def _executor(engine: Engine) -> ThreadPoolExecutor:
    with _EXECUTORS_LOCK:
        if engine not in _EXECUTORS:
            _EXECUTORS[engine] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracetutor-engine")
        return _EXECUTORS[engine]


class APIError(Exception):
    """An error answered as OpenAI's `{"error": {...}}` JSON with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _bad(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def _content_text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts are understood
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"messages[{i}].content: only text content parts are supported", f"messages[{i}].content")
            texts.append(part["text"])
        return "\n".join(texts)
    raise _bad(f"messages[{i}].content must be a string or a list of text parts", f"messages[{i}].content")


def _number(body: dict, name: str, lo: float, hi: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise _bad(f"{name} must be a number between {lo} and {hi}, got {value!r}", name)
    return float(value)


def _integer(body: dict, name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(f"{name} must be an integer of at least {minimum}, got {value!r}", name)
    return value


def parse_request(body: Any) -> tuple[str, dict]:
    """The question and the generation options of a chat-completions request body; a 400
    APIError for anything malformed or unsupported."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list of {role, content} objects", "messages")
    question = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"messages[{i}] must be an object with a role and a content", f"messages[{i}]")
        if m["role"] == "user":
            question = _content_text(m.get("content"), i)
    if question is None or not question.strip():
        raise _bad("no user message: the question is the last message with role 'user'", "messages")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON can escape a lone surrogate, which no tokenizer takes
        raise _bad(f"the question is not valid Unicode: {e.reason} at character {e.start}", "messages") from None
    n = _integer(body, "n", 1)
    if n is not None and n != 1:
        raise _bad(f"n must be 1 (this server returns one choice), got {n}", "n")
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    stop = body.get("stop")
    if stop is None:
        stop = ()
    elif isinstance(stop, str):
        stop = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP:
        stop = tuple(stop)
    else:
        raise _bad(f"stop must be a string or a list of at most {MAX_STOP} strings", "stop")
    if any(not s for s in stop):
        raise _bad("stop strings must not be empty", "stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise _bad("stream must be a boolean", "stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise _bad("stream_options must be an object", "stream_options")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad(f"seed must be an integer, got {seed!r}", "seed")
    check = body.get("check", False)
    if not isinstance(check, bool):
        raise _bad(f"check must be a boolean, got {check!r}", "check")
    options = {
        "check": check,
        "max_tokens": max_tokens,
        "temperature": _number(body, "temperature", 0.0, 2.0, 0.0),
        "top_p": _number(body, "top_p", 0.0, 1.0, 1.0),
        "top_k": _integer(body, "top_k", 0) or 0,
        "seed": seed,
        "stop": stop,
        "stream": bool(stream),
        "include_usage": bool(stream_options.get("include_usage", False)),
    }
    if options["top_p"] <= 0:
        raise _bad("top_p must be greater than 0", "top_p")
    return question, options


def _check_size(question: str, n_ctx: int, longest_token: int) -> None:
    """A 400 for a question longer in bytes than `n_ctx` tokens of at most `longest_token` bytes
    could cover: it cannot fit, whatever its tokens, and is refused without tokenizing it."""
    n_bytes = len(question.encode("utf-8"))
    if n_bytes > n_ctx * longest_token:
        raise _bad(f"the question is {n_bytes} bytes, more than this model's context length of {n_ctx} tokens "
                   f"can hold (a token covers at most {longest_token} bytes); shorten the question", "messages",
                   "context_length_exceeded")


def _settings(engine: Engine, question: str, options: dict) -> tuple[Settings, int]:
    """Settings for a request and its prompt length, or a 400 if it does not fit the context.
    Runs on the engine's thread (tokenizers are not safe to share across threads either)."""
    n_ctx = engine.backend.context_length
    n_prompt = len(engine.backend.encode_prompt(question))
    max_tokens = options["max_tokens"]
    if n_prompt >= n_ctx:
        raise _bad(f"the prompt is {n_prompt} tokens, which does not fit this model's context length of "
                   f"{n_ctx} tokens; shorten the question", "messages", "context_length_exceeded")
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_NEW_TOKENS, n_ctx - n_prompt)
    elif n_prompt + max_tokens > n_ctx:
        raise _bad(f"this model's context length is {n_ctx} tokens, but {n_prompt + max_tokens} were "
                   f"requested ({n_prompt} in the prompt + {max_tokens} max_tokens); shorten the question "
                   f"or ask for at most {n_ctx - n_prompt} max_tokens", "max_tokens", "context_length_exceeded")
    settings = Settings(max_new_tokens=max_tokens, temperature=options["temperature"], top_p=options["top_p"],
                        top_k=options["top_k"], seed=options["seed"], stop=options["stop"], check=options["check"])
    return settings, n_prompt


def _finish_reason(done: Done, settings: Settings) -> str:
    return "length" if done.stats.get("n_tokens", 0) >= settings.max_new_tokens else "stop"


def _usage(done: Done, n_prompt: int) -> dict:
    n_completion = int(done.stats.get("n_tokens", 0))
    return {"prompt_tokens": n_prompt, "completion_tokens": n_completion, "total_tokens": n_prompt + n_completion}


def _extra(done: Done) -> dict:
    return {"steps": list(done.steps), "answer": done.answer, "stats": dict(done.stats)}


def _held_back(text: str, stop: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could be the start of a stop string."""
    n = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), n, -1):
            if text.endswith(s[:k]):
                n = k
                break
    return n


def build_app(engine: Engine, model_name: str):
    """The FastAPI app serving `engine` under the name `model_name`."""
    _require()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app = FastAPI(title="tracetutor", description=f"OpenAI-compatible server for {model_name}")
    app.state.engine, app.state.model_name = engine, model_name
    executor = _executor(engine)
    n_ctx, longest_token = engine.backend.context_length, engine.backend.max_token_bytes

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(APIError(exc.status_code, str(exc.detail), type=kind).body(),
                            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse(_bad(f"invalid request: {exc.errors()}").body(), status_code=400)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception):
        return JSONResponse(APIError(500, f"{type(exc).__name__}: {exc}", type="server_error").body(),
                            status_code=500)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_model_card(model_name)]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str):
        if name != model_name:
            raise APIError(404, f"the model {name!r} does not exist; this server serves {model_name!r}",
                           type="not_found_error", param="model", code="model_not_found")
        return _model_card(model_name)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = json.loads(await _read_body(request))
        except (ValueError, UnicodeDecodeError) as e:
            raise _bad(f"the request body is not valid JSON: {e}") from None
        except RecursionError:
            raise _bad("the request body is JSON nested too deeply") from None
        question, options = parse_request(body)
        _check_size(question, n_ctx, longest_token)
        loop = asyncio.get_running_loop()
        settings, n_prompt = await loop.run_in_executor(executor, _settings, engine, question, options)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if options["stream"]:
            chunks = _stream_chunks(engine, executor, question, settings, n_prompt, cid, created, model_name,
                                    options["include_usage"])
            return StreamingResponse(chunks, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        done = await loop.run_in_executor(executor, engine.ask, question, settings)
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model_name,
            "system_fingerprint": None,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": done.text, "refusal": None},
                "logprobs": None,
                "finish_reason": _finish_reason(done, settings),
            }],
            "usage": _usage(done, n_prompt),
            "tracetutor": _extra(done),
        }

    return app


async def _read_body(request) -> bytes:
    """The request body; a 413 as soon as its declared or received length passes MAX_BODY_BYTES,
    before the rest is read (the server discards it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large(len(body))
    return bytes(body)


def _too_large(n_bytes: int) -> APIError:
    return APIError(413, f"the request body is {n_bytes} bytes or more, over this server's limit of "
                         f"{MAX_BODY_BYTES} bytes", code="request_too_large")


def _model_card(model_name: str) -> dict:
    return {"id": model_name, "object": "model", "created": 0, "owned_by": "tracetutor"}


async def _stream_events(engine: Engine, executor: ThreadPoolExecutor, question: str, settings: Settings):
    """The engine's events for `question`, generated on the engine's thread and handed to the
    event loop through a queue. Stops the generation if the consumer goes away."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()
    end = object()

    def put(item):
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shut down): stop generating
            cancelled.set()

    def work():
        try:
            if cancelled.is_set():
                return
            for event in engine.stream(question, settings):
                put(event)
                if cancelled.is_set():
                    break
        except Exception as e:  # handed to the event loop, raised there
            put(e)
        finally:
            put(end)

    loop.run_in_executor(executor, work)  # queued behind any generation already running
    try:
        while True:
            item = await queue.get()
            if item is end:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()  # the worker stops at once, or after its next event


async def _stream_chunks(engine, executor, question, settings, n_prompt, cid, created, model_name, include_usage):
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_name,
               "system_fingerprint": None,
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            obj["usage"] = None
        obj.update(extra)
        return f"data: {json.dumps(obj)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    text, sent = "", 0  # all token text so far; how much of it has been sent
    try:
        async for event in _stream_events(engine, executor, question, settings):
            if isinstance(event, Token):
                text += event.text
                # never send text that a stop string may yet cut off
                safe = len(text) - _held_back(text, settings.stop) if settings.stop else len(text)
                if any(s in text for s in settings.stop):
                    safe = min(text.index(s) for s in settings.stop if s in text)
                if safe > sent:
                    yield chunk({"content": text[sent:safe]})
                    sent = safe
            elif isinstance(event, Done):
                rest = event.text[sent:] if event.text.startswith(text[:sent]) else ""
                if rest:
                    yield chunk({"content": rest})
                yield chunk({}, _finish_reason(event, settings), tracetutor=_extra(event))
                if include_usage:
                    usage = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_name,
                             "system_fingerprint": None, "choices": [], "usage": _usage(event, n_prompt)}
                    yield f"data: {json.dumps(usage)}\n\n"
            elif isinstance(event, (Step, Answer)):
                pass  # already in the token text; the parsed steps ride on the last chunk
    except Exception as e:  # the status line is already sent: report it in the stream
        err = APIError(500, f"{type(e).__name__}: {e}", type="server_error")
        yield f"data: {json.dumps(err.body())}\n\n"
    yield "data: [DONE]\n\n"


def serve(model: str | Path, variant: str = TORCH, host: str = "127.0.0.1", port: int = 8000,
          threads: int | None = None, *, model_name: str | None = None) -> None:
    """Load `model` in `variant` once and serve it until interrupted. The address is bound
    first: a busy port or a bad host is an OSError naming both, before the model loads."""
    _require()
    import uvicorn

    from .engine import load

    with listen(host, port) as sock:
        engine = load(model, variant, threads=threads)
        name = model_name or Path(str(model)).name.removesuffix(".toml")
        app = build_app(engine, name)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(f"serving {name} ({variant}) at http://{shown}:{bound_port}/v1  (OpenAI-compatible; Ctrl-C to stop)",
              flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port, bound as uvicorn binds one; an OSError naming host
    and port if the port is taken, the host is not this machine's or not an address at all."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":  # a restart need not wait out TIME_WAIT (Windows would share a busy port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError, UnicodeError) as e:
        sock.close()
        if isinstance(e, socket.gaierror):
            why = f"{host!r} is neither an address nor a host name that resolves ({e.strerror})"
        elif isinstance(e, OSError) and e.errno == errno.EADDRINUSE:
            why = "the port is in use (another server is running there?); choose another port"
        elif isinstance(e, OSError) and e.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this machine"
        else:
            why = getattr(e, "strerror", None) or str(e)
        raise OSError(f"cannot serve at {where}: {why}") from None
    return sock
