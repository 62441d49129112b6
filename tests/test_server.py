"""The OpenAI-compatible server, run for real on 127.0.0.1 and spoken to with the openai client."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from tiny_models import build_tiny_llama  # noqa: E402
from tracetutor.cli import main  # noqa: E402
from tracetutor.runtime.engine import Settings, load  # noqa: E402
from tracetutor.runtime.server import MAX_BODY_BYTES, build_app  # noqa: E402

QUESTION = "Mia has 7 apples and buys 5 more. How many apples does she have now?"
MAX_TOKENS = 24
NAME = "tiny-llama"


@contextmanager
def serving(app):
    """`app` run by uvicorn on a free port of 127.0.0.1, in a thread: its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("server") / NAME)


@pytest.fixture(scope="module")
def engine(model_dir):
    return load(model_dir)


@pytest.fixture(scope="module")
def base_url(engine):
    with serving(build_app(engine, NAME)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def expected(engine):
    return engine.ask(QUESTION, Settings(max_new_tokens=MAX_TOKENS))


def ask(client, **kw):
    kw = {"model": "whatever-the-client-says", "messages": [{"role": "user", "content": QUESTION}],
          "max_tokens": MAX_TOKENS, **kw}
    return client.chat.completions.create(**kw)


def test_models_list(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [NAME]
    assert models.data[0].owned_by == "tracetutor"


def test_completion_is_the_engines_greedy_answer(client, expected):
    reply = ask(client, messages=[{"role": "system", "content": "ignored"},
                                  {"role": "user", "content": QUESTION}])
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion" and reply.model == NAME
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert expected.text and choice.message.content == expected.text
    n = expected.stats["n_tokens"]
    assert choice.finish_reason == ("length" if n >= MAX_TOKENS else "stop")
    assert reply.usage.completion_tokens == n
    assert reply.usage.prompt_tokens == expected.stats["n_prompt_tokens"]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + n
    extra = reply.model_extra["tracetutor"]
    assert extra["steps"] == expected.steps and extra["answer"] == expected.answer
    assert extra["stats"]["n_tokens"] == n


def test_checked_arithmetic_is_an_extra_field():
    """A model that slips (`8 + 11 = 29`): plain, the slip is served; with "check": true the
    corrected text, the steps after it and the corrected step's number."""
    from scripted import FIXED, SLIP, ScriptedBackend

    from tracetutor.runtime import Engine

    with serving(build_app(Engine(ScriptedBackend([SLIP, FIXED]), "scripted"), NAME)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        plain = ask(client, max_tokens=64)
        checked = ask(client, max_tokens=64, extra_body={"check": True})
        streamed = "".join(c.choices[0].delta.content or "" for c in ask(client, max_tokens=64, stream=True,
                                                                         extra_body={"check": True}) if c.choices)
    assert plain.choices[0].message.content == SLIP and "corrected_steps" not in plain.model_extra["tracetutor"]["stats"]
    extra = checked.model_extra["tracetutor"]
    assert checked.choices[0].message.content == FIXED == streamed
    assert extra["stats"]["corrected_steps"] == [1] and extra["answer"] == "15"


def test_streaming_matches_the_completion(client, expected):
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == expected.text
    assert len([c for c in with_choices if c.choices[0].delta.content]) > 1  # streamed, not one lump
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["length" if expected.stats["n_tokens"] >= MAX_TOKENS else "stop"]
    assert chunks[-1].usage.completion_tokens == expected.stats["n_tokens"]


def test_stop_strings_are_cut_in_both_modes(client, expected):
    stop = expected.text[len(expected.text) // 2:][:3]
    cut = expected.text[:expected.text.index(stop)]
    assert ask(client, stop=stop).choices[0].message.content == cut
    streamed = "".join(c.choices[0].delta.content or "" for c in ask(client, stop=[stop], stream=True) if c.choices)
    assert streamed == cut


def test_concurrent_requests_queue_and_all_succeed(client, expected):
    def one(i):
        if i % 2:
            return "".join(c.choices[0].delta.content or "" for c in ask(client, stream=True) if c.choices)
        return ask(client).choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert answers == [expected.text] * 8


def test_a_long_stream_blocks_neither_the_loop_nor_the_queue_once_dropped(client, engine):
    long = 500 - len(engine.backend.encode_prompt(QUESTION))  # ~15 s of tokens on a busy 2-core machine
    stream = ask(client, stream=True, max_tokens=long)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    start = time.monotonic()
    assert client.models.list().data[0].id == NAME  # answered while the stream is generating
    assert time.monotonic() - start < 2
    stream.close()  # the client goes away: its generation stops, the next request need not wait it out
    start = time.monotonic()
    ask(client)
    assert time.monotonic() - start < 6


def test_over_long_prompt_is_a_400_naming_the_context_length(client, engine):
    n_ctx = engine.backend.context_length
    assert n_ctx == engine.backend.model.config.max_position_embeddings == 512
    long_question = " ".join(str(i) for i in range(n_ctx))
    assert len(engine.backend.encode_prompt(long_question)) >= n_ctx
    with pytest.raises(openai.BadRequestError, match=f"context length of {n_ctx}") as e:
        ask(client, messages=[{"role": "user", "content": long_question}])
    assert e.value.status_code == 400 and e.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match=f"context length is {n_ctx}.*max_tokens"):
        ask(client, max_tokens=n_ctx, stream=True)


def test_n_above_one_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="n must be 1") as e:
        ask(client, n=2)
    assert e.value.body["param"] == "n"


def test_malformed_requests_get_openai_errors(base_url):
    url = f"{base_url}/chat/completions"
    for body, needle in [(b"{not json", "not valid JSON"),
                         (b'{"messages": []}', "messages must be"),
                         (b'{"messages": [{"role": "system", "content": "hi"}]}', "no user message"),
                         (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', "max_tokens"),
                         (b'{"messages": [{"role": "user", "content": "hi"}], "stop": 3}', "stop"),
                         (b'{"messages": [{"role": "user", "content": "hi"}], "check": "yes"}', "check must be")]:
        r = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 400, body
        error = r.json()["error"]
        assert needle in error["message"] and error["type"] == "invalid_request_error"
    r = httpx.get(f"{base_url}/nowhere", timeout=30)
    assert r.status_code == 404 and "error" in r.json()


def post(url, body: bytes, client=httpx):
    return client.post(f"{url}/chat/completions", content=body, headers={"Content-Type": "application/json"},
                       timeout=60)


def question_body(question: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": question}], "max_tokens": MAX_TOKENS}).encode()


def test_a_body_over_the_limit_is_a_413_refused_before_it_is_read(base_url):
    port = int(base_url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # declares 100 MB, sends none of it
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413 ")

    def chunks():  # no content-length: the server counts what arrives
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b" " * 65536

    r = httpx.post(f"{base_url}/chat/completions", content=chunks(), timeout=60)
    assert r.status_code == 413 and str(MAX_BODY_BYTES) in r.json()["error"]["message"]
    under = post(base_url, question_body("7" * (MAX_BODY_BYTES - 200)))  # just under: read and refused for its length
    assert under.status_code == 400 and under.json()["error"]["code"] == "context_length_exceeded"


def test_a_huge_prompt_does_not_hold_up_the_queue(base_url, engine, client, expected):
    huge = "Mia has 7 apples. " * (MAX_BODY_BYTES // 20)  # under the body limit, far over the context
    start = time.monotonic()
    engine.backend.encode_prompt(huge)
    tokenizing = time.monotonic() - start  # what each one would cost the engine's thread
    n = 24
    with ThreadPoolExecutor(n) as pool:
        refused = [pool.submit(post, base_url, question_body(huge)) for _ in range(n)]
        time.sleep(1)  # the huge prompts are in (and used to queue on the engine's thread)
        start = time.monotonic()
        assert ask(client).choices[0].message.content == expected.text
        waited = time.monotonic() - start
        for r in refused:
            assert r.result().status_code == 400 and r.result().json()["error"]["code"] == "context_length_exceeded"
    assert waited < n * tokenizing / 4, f"answered in {waited:.1f} s; one huge prompt tokenizes in {tokenizing:.2f} s"


BAD_BODIES = [b"[" * 100_000, b'{"messages": [{"role": "user", "content": "\\ud800 hi"}]}', b"{not json"]


def test_deeply_nested_json_and_a_lone_surrogate_are_400s(base_url):
    for body, needle in zip(BAD_BODIES, ["nested too deeply", "not valid Unicode"]):
        r = post(base_url, body)
        assert r.status_code == 400, body[:60]
        error = r.json()["error"]
        assert needle in error["message"] and error["type"] == "invalid_request_error"


def test_a_keep_alive_connection_survives_errors(base_url):
    with httpx.Client(timeout=60) as client:
        for body in [*BAD_BODIES, b" " * (MAX_BODY_BYTES + 1)]:
            error = post(base_url, body, client)
            fine = post(base_url, question_body(QUESTION), client)
            assert error.status_code in (400, 413) and fine.status_code == 200, body[:60]
            local = [r.extensions["network_stream"].get_extra_info("client_addr") for r in (error, fine)]
            assert local[0] == local[1], f"{body[:60]}: a new connection after the error"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_a_busy_port_or_a_bad_host_is_one_line(model_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(model_dir), "--port", str(port)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.startswith(f"tracetutor: error: cannot serve at 127.0.0.1:{port}: the port is in use")
    for host in ["999.1.1.1", "nonexistent.invalid"]:
        assert main(["serve", str(model_dir), "--host", host, "--port", str(free_port())]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and f"cannot serve at {host}:" in err


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))  # sends nothing: picks the address of the outgoing interface
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_serve_binds_loopback_by_default(model_dir):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tracetutor.cli", "serve", str(model_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while True:  # it listens as soon as it starts; requests wait for the model to load
            assert proc.poll() is None, proc.communicate()[1]
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=120)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["data"][0]["id"] == NAME
        assert proc.stdout.readline().startswith(f"serving {NAME} (torch-fp32) at http://127.0.0.1:{port}/v1 ")
        address = non_loopback_address()
        if address is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=10).close()
    finally:
        proc.terminate()
        proc.wait(30)
