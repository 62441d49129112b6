"""The terminal tutor driven by Textual's pilot at 80×24: a scripted model for the tutoring
modes, a damaged GGUF for the in-app error, and the real micro model's GGUF with torch blocked."""

import asyncio
import json
import shutil
import subprocess
import sys
import time

import pytest

pytest.importorskip("textual")

from scripted import APPLES, FIXED, PLAIN, SHELLS, SLIP, ScriptedBackend  # noqa: E402
from textual.widgets import Input, OptionList, Static, TextArea  # noqa: E402

from tracetutor.apps.terminal import TutorApp, _load  # noqa: E402
from tracetutor.apps.tutoring import History  # noqa: E402
from tracetutor.runtime import Engine  # noqa: E402


@pytest.fixture
def shelf(tmp_path, monkeypatch):
    """A models/ folder holding a scripted model (a GGUF name is all the catalog reads) and a
    damaged GGUF; the scripted model's engine is the stand-in, any other loads for real."""
    models = tmp_path / "models"
    (models / "scripted").mkdir(parents=True)
    (models / "scripted" / "scripted-q8_0.gguf").write_bytes(b"")
    (models / "broken").mkdir()
    (models / "broken" / "broken-q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 100)  # the header, no model
    monkeypatch.setenv("TRACETUTOR_MODELS", str(models))
    monkeypatch.setenv("TRACETUTOR_DATA", str(tmp_path / "data"))
    engine = Engine(ScriptedBackend({APPLES: [SLIP, FIXED], SHELLS: [PLAIN]}), "scripted")
    return models, lambda folder, variant: engine if folder.name == "scripted" else _load(folder, variant)


def drive(app, script):
    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await script(pilot)

    asyncio.run(main())


async def settle(pilot):
    """Wait until every worker is done and its results are on screen."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def ask(pilot, question):
    pilot.app.query_one("#question", Input).value = question
    await pilot.press("enter")


def messages(app) -> list[str]:
    return [str(w.content) for w in app.query("#transcript > Static")]


def status(app) -> str:
    return str(app.query_one("#status", Static).content)


def test_a_question_gets_its_steps_and_answer_with_the_corrected_step_marked(shelf):
    models, loader = shelf

    async def script(pilot):
        app = pilot.app
        assert str(app.query_one("#model", Static).content) == "scripted · gguf-q8_0 · 0 B"
        await ask(pilot, APPLES)
        await pilot.press("s")
        await settle(pilot)
        assert messages(app)[-1] == ("Step 1: 8 + 11 = 19  (corrected: the model wrote 8 + 11 = 29)\n"
                                     "Step 2: 19 - 4 = 15\nAnswer: 15")
        assert status(app).endswith(f"{len(FIXED)} tokens · corrected step 1")
        saved = History().list()  # the exchange is in the history
        assert [e.kind for e in saved[0].entries] == ["question", "solution"]

    drive(TutorApp(models / "scripted", loader=loader), script)


def test_h_reveals_exactly_one_more_step_per_press_and_the_answer_last(shelf):
    models, loader = shelf

    async def script(pilot):
        app = pilot.app
        await ask(pilot, SHELLS)
        hints = []
        for _ in range(5):
            before = len(messages(app))
            await pilot.press("h")
            await settle(pilot)
            new = messages(app)[before:]
            assert len(new) == 1  # one press, one message
            hints.append(new[0])
        assert hints == ["Hint 1: Step 1: 3 x 4 = 12", "Hint 2: Step 2: 12 + 5 = 17", "Hint 3: Step 3: 17 - 7 = 10",
                         "Hint 4: Answer: 10", "No more hints: the answer is out. Press n for a new question."]

    drive(TutorApp(models / "scripted", loader=loader), script)


def test_check_my_work_says_right_or_wrong_and_names_the_wrong_step(shelf):
    models, loader = shelf

    async def check(pilot, answer, steps=""):
        await pilot.press("c")
        await pilot.pause()
        pilot.app.screen.query_one("#steps", TextArea).text = steps
        pilot.app.screen.query_one("#answer", Input).value = answer
        pilot.app.screen.query_one("#answer", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        return messages(pilot.app)[-2:]

    async def script(pilot):
        await ask(pilot, APPLES)
        assert await check(pilot, "15") == ["My answer: 15", "Right: 15 is the answer."]
        # 25 is what the model wrote before its arithmetic was checked
        assert await check(pilot, "25") == ["My answer: 25", "Not quite: 25 is not the answer."]
        mine, verdict = await check(pilot, "12", "Step 1: 8 + 11 = 19\nStep 2: 19 - 4 = 12\n")
        assert mine == "Step 1: 8 + 11 = 19\nStep 2: 19 - 4 = 12\nMy answer: 12"
        assert verdict == "Not quite: 12 is not the answer.\nStep 2: 19 - 4 = 12 is wrong: 19 - 4 = 15"
        await pilot.press("c")
        await pilot.press("escape")  # cancelled: nothing is checked
        await settle(pilot)
        assert messages(pilot.app)[-1] == verdict

    drive(TutorApp(models / "scripted", loader=loader), script)


def test_a_damaged_model_is_a_message_and_another_model_can_be_picked(shelf):
    models, loader = shelf

    async def script(pilot):
        app = pilot.app
        error = messages(app)[-2]
        assert error.startswith(f"Could not load {models / 'broken'}: {models / 'broken' / 'broken-q8_0.gguf'}: ")
        assert "GGUF" in error and "Traceback" not in error
        assert messages(app)[-1] == "Press m to pick another model."
        await ask(pilot, APPLES)
        assert messages(app)[-1] == "No model is loaded: press m to pick one."
        await pilot.press("m")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        shipped = [p for p in prompts if p.endswith("(default)")]  # the shipped default comes first
        assert prompts == shipped + ["broken · gguf-q8_0 · 104 B", "scripted · gguf-q8_0 · 0 B"]
        assert options.highlighted == 0  # no model is in use
        await pilot.press(*["down"] * (len(shipped) + 1), "enter")
        await settle(pilot)
        assert str(app.query_one("#model", Static).content) == "scripted · gguf-q8_0 · 0 B"
        await pilot.press("s")  # the question asked before the model loaded is kept
        await settle(pilot)
        assert messages(app)[-1].endswith("Answer: 15")
        await pilot.press("m")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        assert str(options.get_option_at_index(options.highlighted).prompt) == "scripted · gguf-q8_0 · 0 B"
        await pilot.press("escape")

    drive(TutorApp(models / "broken", loader=loader), script)


class SlowBackend(ScriptedBackend):
    def stream_ids(self, prompt, settings):
        for item in super().stream_ids(prompt, settings):
            time.sleep(0.01)
            yield item


def test_n_stops_a_streaming_solution_and_the_next_question_is_answered(shelf, tmp_path):
    models, _ = shelf
    long = "Step 1: " + " + ".join(["1"] * 150) + " = 150\nAnswer: 150"
    engine = Engine(SlowBackend({"Add many ones.": [long], SHELLS: [PLAIN]}), "scripted")

    async def script(pilot):
        app = pilot.app
        await ask(pilot, "Add many ones.")
        await pilot.press("s")
        await pilot.pause(0.3)
        assert app.busy and status(app).startswith("solving… ~") and status(app).endswith("tokens/s")
        await pilot.press("h")  # refused while the solution streams: one piece of work at a time
        assert app.busy and app.tutor.revealed == 0
        await pilot.press("n")
        await settle(pilot)
        assert status(app) == "stopped" and not app.busy and app.tutor.worked is None
        assert len(messages(app)[-1]) < len(long)  # stopped part way
        await ask(pilot, SHELLS)
        await pilot.press("s")
        await settle(pilot)
        assert messages(app)[-1].endswith("Answer: 10")

    drive(TutorApp(models / "scripted", loader=lambda folder, variant: engine), script)


def test_export_writes_the_conversation_as_markdown(shelf):
    models, loader = shelf

    async def script(pilot):
        await ask(pilot, SHELLS)
        await pilot.press("h", "e")
        await settle(pilot)
        path = History().root.parent / "exports" / f"{pilot.app.tutor.conversation.id}.md"
        assert messages(pilot.app)[-1] == f"Exported this conversation to {path}"
        assert "Hint 1: Step 1: 3 x 4 = 12" in path.read_text()

    drive(TutorApp(models / "scripted", loader=loader), script)


# ---------------------------------------------------------------------------------------
# the real micro model


@pytest.fixture(scope="module")
def micro_gguf(trained_micro, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from tracetutor.export.build import export_model

    recipe, _ = trained_micro
    model_dir = tmp_path_factory.mktemp("tutor") / "micro"
    shutil.copytree(recipe.dir, model_dir, ignore=shutil.ignore_patterns("checkpoints"))
    export_model(model_dir, ["gguf-q8_0"], n_prompts=2, log=lambda m: None)
    return model_dir


def test_the_micro_gguf_streams_in_the_app_with_torch_blocked(micro_gguf, tmp_path):
    """The laptop path: the app opens a real GGUF variant with no torch or transformers
    importable, streams a solution and shows its speed (micro writes gibberish: the answer
    is not checked, only that what the app shows is what the engine wrote)."""
    question = "Mia has 7 apples and buys 5 more. How many now?"
    script = f"""
import asyncio, json, sys
for name in ("torch", "transformers", "onnx", "optimum"):
    sys.modules[name] = None  # importing any of them now raises ImportError
from tracetutor.apps.terminal import TutorApp
from tracetutor.apps.tutoring import History

async def main():
    app = TutorApp({str(micro_gguf)!r}, "gguf-q8_0", history=History({str(tmp_path / "history")!r}))
    streamed = []
    show = app.show_stream
    app.show_stream = lambda message, text, status: (streamed.append([text, status]), show(message, text, status))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        model = str(app.query_one("#model").content)
        app.query_one("#question").value = {question!r}
        await pilot.press("enter", "s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        steps = [s.text for s in app.tutor.worked.steps]
        print(json.dumps({{"model": model, "status": str(app.query_one("#status").content),
                           "streamed": streamed, "steps": steps, "answer": app.tutor.worked.answer,
                           "text": app.tutor.worked.text, "shown": str(app.query("#transcript > Static").last().content),
                           "modules": sorted(m for m in sys.modules if m.startswith("tracetutor"))}}))

asyncio.run(main())
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["model"].startswith("micro · gguf-q8_0 · ") and out["model"].endswith("KB")
    assert "tokens/s" in out["status"] and "first token" in out["status"], out["status"]
    assert out["streamed"] and all(out["text"].startswith(text) for text, _ in out["streamed"])
    assert out["streamed"][0][1].startswith("solving…")
    from tracetutor.runtime import Settings, load

    done = load(micro_gguf, "gguf-q8_0").ask(question, Settings(check=True))
    assert (out["text"], out["steps"], out["answer"]) == (done.text, done.steps, done.answer)
    assert out["shown"].startswith(f"Step 1: {done.steps[0]}")
    assert "tracetutor.runtime.torch_backend" not in out["modules"] and "tracetutor.train" not in out["modules"]
    saved = json.loads(next((tmp_path / "history").glob("*.json")).read_text())
    assert [e["kind"] for e in saved["entries"]] == ["question", "solution"]


def test_tutor_command_opens_the_app_on_the_model_and_variant(monkeypatch):
    import tracetutor.apps.terminal as terminal
    from tracetutor.cli import main

    opened = []
    monkeypatch.setattr(terminal, "run", lambda model, variant: opened.append((model, variant)))
    assert main(["tutor"]) == 0 and main(["tutor", "micro", "--variant", "gguf-f16"]) == 0
    assert opened == [(None, None), ("micro", "gguf-f16")]  # no MODEL: the shipped default


def test_tutor_command_without_textual_is_one_line_naming_the_extra():
    script = """
import sys
sys.modules["textual"] = None  # not installed
from tracetutor.cli import main
sys.exit(main(["tutor"]))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr == "tracetutor: error: the terminal tutor needs textual: pip install 'tracetutor[runtime]'\n"
