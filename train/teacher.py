"""Teacher distillation: traces written by a model behind any OpenAI-compatible chat endpoint
(vLLM, llama.cpp's server, a hosted API, or `tracetutor serve`).

For each question the teacher is asked `k` times at a temperature, with a system prompt that
asks for numbered steps and a last `Answer:` line (and, with `gold_in_prompt`, the gold answer
in the question, so it explains rather than guesses). Each reply becomes one trace appended to
the output file at once, so a run that is killed loses nothing it received, and a rerun asks
only for the traces the file does not hold yet. What the teacher wrote is not judged here:
`data filter` keeps the traces that reach the gold answer with no false step.

HTTP goes through the standard library (urllib): a teacher run needs nothing installed beyond
the core, and one JSON POST with a timeout, retries and backoff is all the protocol it uses.
The API key is read from an environment variable (TRACETUTOR_TEACHER_API_KEY by default) and
only ever sent in the Authorization header, never printed or written.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tracetutor.trace import Trace, TraceFileError, iter_records, parse_completion

API_KEY_ENV = "TRACETUTOR_TEACHER_API_KEY"
SYSTEM_PROMPT = (
    "You are a careful math teacher. Solve the problem step by step. Write each step on its own line, "
    "numbered as 'Step 1:', 'Step 2:', and so on; write the arithmetic of each step out in full, "
    "such as '3 x 4 = 12', with the exact result. Do not round unless the problem asks for it. "
    "End with one last line 'Answer: <number>' that holds only the final answer."
)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class TeacherSettings:
    """How to ask the teacher."""

    base_url: str
    """The endpoint's base, as an OpenAI client takes it: `http://127.0.0.1:8000/v1`."""
    model: str
    k: int = 1
    """Traces asked for each question."""
    temperature: float = 0.7
    max_tokens: int = 512
    gold_in_prompt: bool = False
    concurrency: int = 4
    """Requests in flight at once."""
    timeout: float = 120.0
    """Seconds one request may take."""
    retries: int = 4
    """Further tries after a timeout, a lost connection, a 429 or a 5xx."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled at each next one (with jitter), at most 30."""
    api_key_env: str = API_KEY_ENV

    def __post_init__(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        for name, low in (("k", 1), ("concurrency", 1), ("max_tokens", 1), ("retries", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be between 0 and 2, got {self.temperature}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")


class EndpointError(OSError):
    """The endpoint cannot be reached or refuses every request; the run stops."""


@dataclass
class Question:
    id: str
    question: str
    gold: str | None
    family: str | None = None
    difficulty: int | None = None


def read_questions(path) -> tuple[list[Question], list[str]]:
    """The questions of a JSONL file (`question`, optional `id`, `answer` or `gold`), and one
    error per line that has none. A GSM8K line's `#### n` is its gold answer."""
    stem = Path(path).stem
    questions, errors, seen = [], [], set()
    for line, record in iter_records(path):
        if isinstance(record, TraceFileError):
            errors.append(str(record))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("question"), str) or not record["question"].strip():
            errors.append(str(TraceFileError("no question", path=path, line=line, field="question")))
            continue
        qid = str(record.get("id", f"{stem}/{line:06d}"))
        if qid in seen:
            errors.append(str(TraceFileError(f"the id {qid!r} is used twice", path=path, line=line, field="id")))
            continue
        seen.add(qid)
        gold = record.get("gold", record.get("answer"))
        if gold is not None:
            gold = str(gold).rpartition("####")[2].strip()
        difficulty = record.get("difficulty")
        questions.append(Question(qid, record["question"].strip(), gold or None, record.get("family"),
                                  difficulty if isinstance(difficulty, int) else None))
    return questions, errors


def _messages(q: Question, settings: TeacherSettings) -> list[dict]:
    user = q.question
    if settings.gold_in_prompt and q.gold is not None:
        user += f"\n\nThe correct final answer is {q.gold}. Show the steps that reach it."
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _seed(trace_id: str) -> int:
    return zlib.crc32(trace_id.encode("utf-8"))


def ask(settings: TeacherSettings, messages: list[dict], seed: int | None = None) -> str:
    """One chat completion's text, retried with backoff; EndpointError when the endpoint
    cannot be reached or refuses the request, naming the URL and never the key."""
    url = settings.base_url.rstrip("/") + "/chat/completions"
    body = {"model": settings.model, "messages": messages, "temperature": settings.temperature,
            "max_tokens": settings.max_tokens}
    if seed is not None:
        body["seed"] = seed
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(settings.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode("utf-8")
    for attempt in range(settings.retries + 1):
        wait = min(30.0, settings.backoff * 2**attempt) * (0.5 + random.random() / 2)
        try:
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=settings.timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
            return _content(reply, url)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise EndpointError(f"{url}: HTTP {e.code}: the key was refused (it is read from "
                                    f"${settings.api_key_env})") from None
            if e.code not in RETRY_STATUS or attempt == settings.retries:
                detail = _error_message(e)
                raise EndpointError(f"{url}: HTTP {e.code}{detail.replace(key, '***') if key else detail}") from None
            after = e.headers.get("Retry-After", "") if e.headers else ""
            wait = min(60.0, float(after)) if after.replace(".", "", 1).isdigit() else wait
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            if attempt == settings.retries:
                reason = getattr(e, "reason", e)
                raise EndpointError(f"cannot reach the teacher at {url}: {reason} "
                                    f"({settings.retries + 1} tries)") from None
        time.sleep(wait)


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(e.read().decode("utf-8"))["error"]["message"]
    except Exception:  # any body that is not OpenAI's error JSON: the status says enough
        return ""
    return f": {' '.join(str(message).split())[:300]}"


def _content(reply, url: str) -> str:
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise EndpointError(f"{url}: the reply is not a chat completion (no choices[0].message.content)") from None
    return content if isinstance(content, str) else ""


def _done_ids(out: Path) -> set[str]:
    """Ids of the traces already in `out`; a last line cut short by a killed run is removed."""
    if not out.is_file():
        return set()
    raw = out.read_bytes()
    if raw and not raw.endswith(b"\n"):
        with open(out, "r+b") as f:  # the line being written when the run stopped: asked again
            f.truncate(raw.rfind(b"\n") + 1)
    done = set()
    for _, record in iter_records(out):
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            done.add(record["id"])
    return done


def run_teacher(questions_path, out, settings: TeacherSettings, log=lambda message: None) -> dict:
    """Ask the teacher for every trace `out` does not hold yet; each reply is appended at once.

    Returns {"questions", "asked", "received", "skipped", "bad_lines"}. Raises EndpointError
    when the endpoint is dead or refuses a request (what was received stays in `out`).
    """
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a folder; traces are written to a file such as {out / 'teacher.jsonl'}")
    questions, bad_lines = read_questions(questions_path)
    if not questions:
        raise ValueError(f"{questions_path}: no questions ({len(bad_lines)} lines rejected)")
    done = _done_ids(out)
    jobs = [(q, j) for q in questions for j in range(settings.k) if f"teacher/{q.id}/{j}" not in done]
    skipped = len(questions) * settings.k - len(jobs)
    log(f"{len(questions)} questions x {settings.k}: {skipped} traces already in {out}, asking for {len(jobs)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    lock, received = threading.Lock(), 0
    stop = threading.Event()

    def one(q: Question, j: int) -> None:
        nonlocal received
        if stop.is_set():
            return
        trace_id = f"teacher/{q.id}/{j}"
        try:
            text = ask(settings, _messages(q, settings), _seed(trace_id) if settings.temperature > 0 else None)
        except EndpointError:
            stop.set()  # the questions queued behind this one are not sent
            raise
        steps, answer = parse_completion(text)
        # gold is written even when unknown (null): the filter then knows it cannot check the answer
        extra = {"gold": q.gold, "teacher": settings.model, "temperature": settings.temperature,
                 "question_id": q.id}
        if answer is None:
            extra["completion"] = text  # kept whole, so what the teacher wrote is never lost
        trace = Trace(id=trace_id, question=q.question, steps=steps, answer=answer or "", source="teacher",
                      family=q.family, difficulty=q.difficulty, extra=extra)
        line = json.dumps(trace.to_dict(), ensure_ascii=False) + "\n"
        with lock, open(out, "a", encoding="utf-8", newline="\n") as f:
            f.write(line)
            received += 1

    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        futures = [pool.submit(one, q, j) for q, j in jobs]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            stop.set()  # those in flight finish and are kept
            for future in futures:
                future.cancel()
            raise
    return {"questions": len(questions), "asked": len(jobs), "received": received, "skipped": skipped,
            "bad_lines": bad_lines}
