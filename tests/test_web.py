"""The web tutor in a real headless Chromium driven by Playwright, against the app on
loopback: a scripted model whose answers are known (streaming, checked arithmetic, hints,
check my work, votes, history, export, a broken model, the benchmark tab), the micro model's
GGUF through llama.cpp, and every request the page and the server make stays on loopback."""

import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from scripted import APPLES, FIXED, PLAIN, SHELLS, SLIP, ScriptedBackend  # noqa: E402

from tracetutor.apps.tutoring import History, ModelChoice, VariantChoice, describe_model  # noqa: E402
from tracetutor.apps.web import build_app, launch  # noqa: E402
from tracetutor.runtime import Engine  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHORTCUT = "Step 1: 3 x 4 = 12\nStep 2: 12 + 4 = 16\nAnswer: 16"  # a sampled slip: one vote of three
MONEY = "A pen costs $3 and a book $12. What is $x^2$ when $x = 3$?"
MONEY_SOLUTION = "Step 1: 3 x 3 = 9\nAnswer: 9"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Tutorial(ScriptedBackend):
    """The scripted model with a log-probability per token, and a gate: for a question in
    `held`, it waits before writing `Answer:` until the test sets the event."""

    def __init__(self, scripts):
        super().__init__(scripts)
        self.held: dict[str, threading.Event] = {}

    def stream_ids(self, prompt, settings):
        question, _, done = self.decode(prompt).removeprefix("Q: ").partition("\nA: ")
        for token in self._continue(prompt, settings):
            if chr(token) == "A" and done.endswith("\n") and question in self.held:
                self.held[question].wait(20)
            done += chr(token)
            yield token, (-0.05 if settings.logprobs else None)


# ---------------------------------------------------------------------------------------
# fixtures: what leaves this process, the browser, the app


OUTBOUND: list[str] = []  # connections and lookups of non-loopback hosts, from any thread


def _audit(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple):
        host = str(args[1][0])
    elif event == "socket.getaddrinfo":
        host = str(args[0])
    else:
        return
    if host not in LOOPBACK and not host.startswith("127."):
        OUTBOUND.append(f"{event} {host}")


sys.addaudithook(_audit)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """The app over a scripted model and a model whose file is damaged: (url, backend, folder)."""
    root = tmp_path_factory.mktemp("web")
    folder, broken = root / "scripted", root / "broken"
    folder.mkdir()
    broken.mkdir()
    _benchmark(folder)
    backend = Tutorial({APPLES: [SLIP, FIXED], SHELLS: [PLAIN, SHORTCUT], MONEY: [MONEY_SOLUTION]})
    engine = Engine(backend, "scripted")

    def load(path, variant):
        if path == broken:
            raise ValueError(f"{path / 'broken-q8_0.gguf'}: not a GGUF file (truncated?)")
        return engine

    catalog = [ModelChoice("scripted", folder, [VariantChoice("scripted", 1234, 0.62, 0.71)], default=True),
               ModelChoice("broken", broken, [VariantChoice("gguf-q8_0", 99)])]
    app = build_app(catalog, load=load, history=History(root / "history"))
    url = launch(app, "127.0.0.1", free_port())
    yield url, backend, folder
    app.close()


def _benchmark(folder: Path) -> None:
    """A bench.json, a report that links a local and a remote image, and one plot."""
    from PIL import Image

    (folder / "bench.json").write_text(json.dumps({"variants": {"scripted": {"accuracy": 0.62}}}))
    (folder / "report.md").write_text("# scripted\n\n| model | accuracy |\n|---|---|\n| scripted (gguf) | **62.0%** |\n\n"
                                      "![by level](accuracy_by_level.png)\n\n![remote](https://example.com/plot.png)\n")
    Image.new("RGB", (120, 60), (40, 90, 200)).save(folder / "accuracy_by_level.png")


@pytest.fixture
def page(browser):
    """A fresh browser profile (its own local storage) whose every request is recorded."""
    context = browser.new_context(accept_downloads=True)
    p = context.new_page()
    p.requests = []
    p.on("request", lambda r: p.requests.append(r.url))
    yield p
    context.close()


def open_tutor(page, url: str, ready: str = "is ready"):
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#status")).to_contain_text(ready, timeout=30_000)
    return page.locator("#chat")


def ask(page, question: str, button: str = "#solve"):
    page.locator("#question textarea").fill(question)
    page.locator(button).click()


def pick(page, dropdown: str, option: str):
    page.locator(f"{dropdown} input").click()
    page.locator(f"{dropdown} li", has_text=option).click()


# ---------------------------------------------------------------------------------------
# the tutor with a known model


def test_solve_streams_each_step_before_the_answer_and_marks_the_corrected_step(page, scripted):
    from playwright.sync_api import expect

    url, backend, _ = scripted
    chat = open_tutor(page, url)
    backend.held[APPLES] = gate = threading.Event()
    try:
        ask(page, APPLES)
        expect(chat).to_contain_text("Step 2: 19 - 4 = 15", timeout=10_000)
        expect(chat).to_contain_text("Working it out")  # the steps' block is still pending
        assert "Answer" not in chat.inner_text()
    finally:
        gate.set()
        del backend.held[APPLES]
    expect(chat).to_contain_text("tokens/s", timeout=10_000)  # the speed comes with the finished solution
    text = chat.inner_text()
    assert "Answer: 15" in text and "Step 1: 8 + 11 = 19" in text and "corrected: the model wrote 8 + 11 = 29" in text
    assert "Checked arithmetic corrected step 1: the model wrote 8 + 11 = 29" in text  # outside the block too
    # the slip only where it is named as the model's ("25" alone could be the speed line's figure)
    assert "Answer: 25" not in text and "= 25" not in text and text.count("= 29") == 2
    assert "(95%)" in text  # each step's confidence: exp(-0.05)


def test_an_empty_or_over_long_question_is_a_message_not_a_traceback(page, scripted, capfd):
    from playwright.sync_api import expect

    open_tutor(page, scripted[0])
    ask(page, "   ")
    expect(page.get_by_text("the question is empty")).to_be_visible(timeout=10_000)
    ask(page, "How many? " * 500)  # the scripted model reads 4096 characters
    expect(page.get_by_text("shorten the question")).to_be_visible(timeout=10_000)
    assert "Traceback" not in capfd.readouterr().err  # the terminal running the tutor stays clean


def test_with_checked_arithmetic_off_the_model_answers_as_it_wrote(page, scripted):
    from playwright.sync_api import expect

    chat = open_tutor(page, scripted[0])
    page.locator("#checked input").uncheck()
    ask(page, APPLES)
    expect(chat).to_contain_text("Answer: 25", timeout=10_000)
    assert "corrected" not in chat.inner_text()


def test_hint_shows_one_more_step_per_click_and_the_answer_last(page, scripted):
    from playwright.sync_api import expect

    chat = open_tutor(page, scripted[0])
    page.locator("#question textarea").fill(SHELLS)
    for n, shown in enumerate(["Step 1: 3 x 4 = 12", "Step 2: 12 + 5 = 17", "Step 3: 17 - 7 = 10"], 1):
        page.locator("#hint").click()
        expect(chat).to_contain_text(f"Hint {n}. {shown}", timeout=10_000)
        assert f"Hint {n + 1}" not in chat.inner_text() and "the answer" not in chat.inner_text()
    page.locator("#hint").click()
    expect(chat).to_contain_text("Hint 4: the answer. 10", timeout=10_000)
    page.locator("#hint").click()
    expect(page.get_by_text("No more hints")).to_be_visible(timeout=10_000)


def test_check_my_work_says_right_or_wrong_and_names_the_first_wrong_step(page, scripted):
    from playwright.sync_api import expect

    chat = open_tutor(page, scripted[0])
    page.locator("#question textarea").fill(SHELLS)
    page.locator("#check-panel").get_by_text("Check my work").first.click()
    page.locator("#my-answer textarea, #my-answer input").first.fill("11")
    page.locator("#my-steps textarea").fill("3 x 4 = 12\n12 + 5 = 18\n18 - 7 = 11")
    page.locator("#check").click()
    expect(chat).to_contain_text("Not quite: 11 is not the answer.", timeout=10_000)
    expect(chat).to_contain_text("First wrong step: Step 2: 12 + 5 = 18 is wrong: 12 + 5 = 17")
    page.locator("#my-answer textarea, #my-answer input").first.fill("10")
    page.locator("#my-steps textarea").fill("")
    page.locator("#check").click()
    expect(chat).to_contain_text("Right: 10 is the answer.", timeout=10_000)
    assert "Answer: 10" not in chat.inner_text()  # checking never gives the solution away


def test_self_consistency_shows_the_vote_share(page, scripted):
    from playwright.sync_api import expect

    chat = open_tutor(page, scripted[0])
    samples = page.locator("#samples input[type=number]")
    samples.fill("3")
    samples.press("Enter")
    ask(page, SHELLS)
    # seeds 0, 1, 2 sample PLAIN, SHORTCUT, PLAIN
    expect(chat).to_contain_text("Self-consistency: 2 of 3 samples agree on 10 (67%", timeout=15_000)
    expect(chat).to_contain_text("Votes: 10: 2, 16: 1")


def test_history_survives_a_reload_and_exports_as_markdown(page, scripted):
    from playwright.sync_api import expect

    chat = open_tutor(page, scripted[0])
    ask(page, APPLES)
    expect(page.locator("#export")).to_be_enabled(timeout=10_000)  # the exchange is saved
    page.reload()
    expect(chat).to_contain_text("Answer: 15", timeout=15_000)  # reopened from History
    expect(chat).to_contain_text(APPLES)
    with page.expect_download() as download:
        page.locator("#export").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith(f"# {APPLES}") and "Answer: 15" in exported
    assert "corrected: the model wrote 8 + 11 = 29" in exported
    page.locator("#new").click()
    expect(chat).not_to_contain_text(APPLES)
    page.get_by_role("tab", name="History").click()
    page.locator("#history-list input").click()
    page.locator("#history-list li").first.click()  # the newest: this one
    expect(chat).to_contain_text("Answer: 15", timeout=10_000)


def test_a_broken_model_is_a_message_and_the_app_stays_usable(page, scripted):
    from playwright.sync_api import expect

    chat = open_tutor(page, scripted[0])
    pick(page, "#model", "broken")
    expect(page.locator("#status")).to_contain_text("Could not load broken (gguf-q8_0)", timeout=10_000)
    expect(page.locator("#status")).to_contain_text("broken-q8_0.gguf: not a GGUF file")
    ask(page, APPLES)
    expect(page.get_by_text("no model is loaded")).to_be_visible(timeout=10_000)
    pick(page, "#model", "scripted")
    expect(page.locator("#status")).to_contain_text("is ready", timeout=10_000)
    page.locator("#solve").click()
    expect(chat).to_contain_text("Answer: 15", timeout=10_000)


def test_benchmark_tab_shows_the_report_and_its_plots(page, scripted):
    from playwright.sync_api import expect

    open_tutor(page, scripted[0])
    page.get_by_role("tab", name="Benchmark").click()
    bench = page.locator("#benchmark")
    expect(bench).to_contain_text("scripted (gguf)", timeout=10_000)
    expect(page.locator("#plots img")).to_have_count(1)
    pick(page, "#model", "broken")
    expect(bench).to_contain_text("No benchmark yet for broken", timeout=10_000)


def test_nothing_leaves_loopback_and_math_renders_from_local_assets(page, scripted):
    from playwright.sync_api import expect

    url, _, _ = scripted
    OUTBOUND.clear()
    chat = open_tutor(page, url)
    ask(page, MONEY)
    expect(chat).to_contain_text("Answer: 9", timeout=10_000)
    expect(page.locator("#export")).to_be_enabled(timeout=10_000)
    expect(chat.locator(".katex").first).to_be_visible()  # $x^2$ and $x = 3$ are math
    assert chat.locator(".katex").count() == 2
    expect(chat).to_contain_text("A pen costs $3 and a book $12.")  # and $3, $12 are money
    page.get_by_role("tab", name="Benchmark").click()
    expect(page.locator("#plots img")).to_have_count(1, timeout=10_000)
    page.get_by_role("tab", name="Tutor").click()
    with page.expect_download():
        page.locator("#export").click()
    hosts = {u.split("/")[2] for u in page.requests if u.startswith(("http:", "https:", "ws:", "wss:"))}
    assert hosts == {url.split("/")[2]}, [u for u in page.requests if url.split("/")[2] not in u]
    assert any("katex" in u and u.endswith(".css") for u in page.requests)  # KaTeX served by the app itself
    assert not any("example.com" in u for u in page.requests)  # the report's remote image is not shown
    assert OUTBOUND == []  # no analytics, version check or telemetry from the server either


# ---------------------------------------------------------------------------------------
# the real micro model, and the command


@pytest.fixture(scope="module")
def micro_gguf(trained_micro, tmp_path_factory):
    from tracetutor.export.build import export_model

    recipe, _ = trained_micro
    folder = tmp_path_factory.mktemp("web-micro") / "micro"
    shutil.copytree(recipe.dir, folder, ignore=shutil.ignore_patterns("checkpoints"))
    export_model(folder, ["gguf-q8_0"], n_prompts=2, log=lambda m: None)
    return folder


def test_the_micro_model_streams_through_llama_cpp(page, micro_gguf, tmp_path):
    from playwright.sync_api import expect

    pytest.importorskip("llama_cpp")
    from tracetutor.runtime import unload

    choice = describe_model(micro_gguf)
    app = build_app([choice], start=(str(micro_gguf), "gguf-q8_0"), history=History(tmp_path))
    try:
        chat = open_tutor(page, launch(app, "127.0.0.1", free_port()))
        expect(page.locator("#status")).to_contain_text("micro gguf-q8_0 is ready")
        ask(page, "Mia has 7 apples and buys 5 more. How many now?")
        expect(chat).to_contain_text("tokens/s", timeout=30_000)  # micro writes gibberish: only its stats
        expect(chat).to_contain_text("micro gguf-q8_0")
    finally:
        app.close()
        unload(micro_gguf)


def test_the_command_listens_on_loopback_and_prints_its_url(micro_gguf):
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tracetutor.cli", "web", str(micro_gguf), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"tracetutor web tutor at http://127.0.0.1:{port}/"), (line, proc.stderr.read())
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_busy_port_is_one_line(capsys):
    from tracetutor.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["web", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tracetutor: error: cannot serve at 127.0.0.1:{port}: the port is in use (another server " \
                  "is running there?); choose another port"
