"""The OpenAI-compatible server, run for real on 127.0.0.1 and spoken to with the openai client."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from tiny_models import build_tiny_llama  # noqa: E402
from tracetutor.runtime.engine import Settings, load  # noqa: E402
from tracetutor.runtime.server import _context_length, build_app  # noqa: E402

QUESTION = "Mia has 7 apples and buys 5 more. How many apples does she have now?"
MAX_TOKENS = 24
NAME = "tiny-llama"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load(build_tiny_llama(tmp_path_factory.mktemp("server") / "tiny-llama"))


@pytest.fixture(scope="module")
def base_url(engine):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(engine, NAME), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(10)
    sock.close()


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


def test_binds_loopback_only(base_url):
    assert base_url.startswith("http://127.0.0.1:")


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


def test_checked_arithmetic_is_an_extra_field(client, expected):
    plain = ask(client).model_extra["tracetutor"]["stats"]
    checked = ask(client, extra_body={"check": True}).model_extra["tracetutor"]["stats"]
    assert "corrected_steps" not in plain and isinstance(checked["corrected_steps"], list)


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
    n_ctx = _context_length(engine)
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
