"""Teacher distillation against real HTTP servers on 127.0.0.1: a small stdlib server that
fails when told to (retries, resume, keys), and tracetutor's own `serve` with a tiny model."""

import json
import re
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracetutor.cli import main
from tracetutor.trace import load_traces
from tracetutor.train.teacher import SYSTEM_PROMPT, EndpointError, TeacherSettings, read_questions, run_teacher

QUESTIONS = [{"id": f"q{i}", "question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(1, 4)]


class Teacher:
    """An OpenAI-style chat endpoint that adds the two numbers of the question, after failing
    the first `fail_first` requests with a 503 and every request from `fail_after` on with a 500."""

    def __init__(self, fail_first=0, fail_after=None, status=503):
        self.fail_first, self.fail_after, self.status = fail_first, fail_after, status
        self.requests = []  # (headers, body) of every request
        self.lock = threading.Lock()

    def reply(self, body) -> tuple[int, dict]:
        with self.lock:
            n = len(self.requests)
            self.requests.append(body)
        if n < self.fail_first:
            return self.status, {"error": {"message": "busy, try again"}}
        if self.fail_after is not None and n >= self.fail_after:
            return 500, {"error": {"message": "the model crashed"}}
        a, b = map(int, re.findall(r"\d+", body["messages"][-1]["content"])[:2])
        text = f"Step 1: {a} + {b} = {a + b}\nAnswer: {a + b}"
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


@contextmanager
def serving(teacher: Teacher):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_authorization"] = self.headers.get("Authorization")
            status, reply = teacher.reply(body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


def settings(url, **kw):
    return TeacherSettings(base_url=url, model="teacher-x", backoff=0.01, timeout=10, **kw)


def test_k_traces_per_question_after_retries(questions, tmp_path):
    teacher, out = Teacher(fail_first=2), tmp_path / "out.jsonl"
    with serving(teacher) as url:
        done = run_teacher(questions, out, settings(url, k=2, temperature=0.9, concurrency=1))
    assert done == {"questions": 3, "asked": 6, "received": 6, "skipped": 0, "bad_lines": []}
    assert len(teacher.requests) == 8  # two 503s, then one request per trace
    traces = load_traces(out)
    assert sorted(t.id for t in traces) == [f"teacher/q{i}/{j}" for i in (1, 2, 3) for j in (0, 1)]
    t = next(t for t in traces if t.id == "teacher/q2/1")
    assert (t.question, t.steps, t.answer, t.source) == ("What is 2 + 3?", ["2 + 3 = 5"], "5", "teacher")
    assert t.extra == {"gold": "5", "teacher": "teacher-x", "temperature": 0.9, "question_id": "q2"}
    body = teacher.requests[-1]
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT} and "Answer:" in SYSTEM_PROMPT
    assert body["temperature"] == 0.9 and body["model"] == "teacher-x"
    assert len({b["seed"] for b in teacher.requests[2:]}) == 6  # each trace its own sample


def test_the_gold_answer_goes_in_the_prompt_only_when_asked(questions, tmp_path):
    teacher = Teacher()
    with serving(teacher) as url:
        run_teacher(questions, tmp_path / "a.jsonl", settings(url, temperature=0))
        run_teacher(questions, tmp_path / "b.jsonl", settings(url, gold_in_prompt=True, temperature=0))
    users = [b["messages"][-1]["content"] for b in teacher.requests]
    assert sum("The correct final answer is" in u for u in users) == 3
    assert "The correct final answer is 5." in " ".join(users) and all("seed" not in b for b in teacher.requests)


def test_a_killed_run_resumes_without_asking_again(questions, tmp_path):
    out = tmp_path / "out.jsonl"
    dying = Teacher(fail_after=3)
    with serving(dying) as url, pytest.raises(EndpointError, match="HTTP 500: the model crashed"):
        run_teacher(questions, out, settings(url, k=2, retries=1, concurrency=1))
    first = out.read_text(encoding="utf-8")
    assert len(first.splitlines()) == 3  # every trace received before the failure was kept
    with open(out, "a", encoding="utf-8") as f:  # and a run killed while writing leaves half a line
        f.write('{"id": "teacher/q3/1", "quest')

    healthy = Teacher()
    with serving(healthy) as url:
        done = run_teacher(questions, out, settings(url, k=2))
    assert (done["skipped"], done["asked"], len(healthy.requests)) == (3, 3, 3)
    assert out.read_text(encoding="utf-8").startswith(first)
    assert sorted(t.id for t in load_traces(out)) == [f"teacher/q{i}/{j}" for i in (1, 2, 3) for j in (0, 1)]
    with serving(healthy) as url:  # nothing left to ask
        assert run_teacher(questions, out, settings(url, k=2))["asked"] == 0
    assert len(healthy.requests) == 3


def test_the_key_comes_from_the_environment_and_is_never_printed(questions, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRACETUTOR_TEACHER_API_KEY", "sk-very-secret")
    ok, refused = Teacher(), Teacher(fail_first=10, status=401)
    with serving(ok) as url:
        run_teacher(questions, tmp_path / "ok.jsonl", settings(url))
    assert {b["_authorization"] for b in ok.requests} == {"Bearer sk-very-secret"}
    with serving(refused) as url:
        assert main(["data", "teacher", str(questions), "--base-url", url, "--model", "m", "--concurrency", "1",
                     "--out", str(tmp_path / "no.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401: the key was refused (it is read from $TRACETUTOR_TEACHER_API_KEY)" in err
    assert "sk-very-secret" not in err and "very-secret" not in (tmp_path / "ok.jsonl").read_text()
    assert len(refused.requests) == 1  # a refused key is not retried, and the questions queued are not sent


def test_a_dead_endpoint_is_one_error_naming_the_url(questions, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    start = time.monotonic()
    assert main(["data", "teacher", str(questions), "--base-url", url, "--model", "m", "--retries", "1",
                 "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"tracetutor: error: cannot reach the teacher at {url}/chat/completions:")
    assert "Traceback" not in "\n".join(err) and time.monotonic() - start < 30


def test_question_lines_without_a_question_are_counted(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "2 + 2?", "answer": "x\\n#### 4"}\n{"q": 1}\n{oops\n{"question": "3 + 3?"}\n')
    questions, errors = read_questions(path)
    assert [(q.id, q.gold) for q in questions] == [("q/000001", "4"), ("q/000004", None)]
    assert errors[0] == f"{path}:2: field 'question': no question" and errors[1].startswith(f"{path}:3: invalid JSON")


# --- tracetutor's own server --------------------------------------------------------------


def test_a_teacher_run_against_tracetutor_serve(questions, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("fastapi")
    uvicorn = pytest.importorskip("uvicorn")
    from tiny_models import build_tiny_llama
    from tracetutor.runtime.engine import load
    from tracetutor.runtime.server import build_app

    app = build_app(load(build_tiny_llama(tmp_path / "tiny")), "tiny")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    url, out = f"http://127.0.0.1:{sock.getsockname()[1]}/v1", tmp_path / "out.jsonl"
    try:
        first = run_teacher(questions, out, TeacherSettings(url, "tiny", k=2, max_tokens=12, temperature=0.8))
        again = run_teacher(questions, out, TeacherSettings(url, "tiny", k=2, max_tokens=12, temperature=0.8))
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert (first["received"], again["asked"]) == (6, 0)
    traces = load_traces(out)
    assert {t.extra["teacher"] for t in traces} == {"tiny"} and {t.source for t in traces} == {"teacher"}
    # random weights write no `Answer:` line: what they wrote is kept whole for a person to read
    assert all(t.answer or t.extra["completion"] for t in traces)
