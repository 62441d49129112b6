"""The terminal tutor (`tracetutor tutor [MODEL] [--variant V]`): a Textual app over
`tutoring.Tutor`, usable in an 80×24 terminal and with no torch installed.

Keys (shown in the footer): `s` the whole solution, `h` the next hint, `c` check my work,
`v` self-consistency, `n` a new question, `m` another model or variant, `e` export the
conversation as Markdown. The model loads and answers in thread workers; their results come
back through `call_from_thread`, so the screen never freezes. Each exchange is saved to the
conversation history as it happens.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, LoadingIndicator, OptionList, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from .tutoring import (History, ModelChoice, Tutor, default_model_folder, describe_model, human_size,
                       learner_steps, model_catalog, model_wrote, work_text)

HELP = ("Type a question below and press Enter. Then press s for the whole solution, h for one "
        "step at a time, c to check your own answer and steps, v to let several samples vote, "
        "n for a new question, m to pick another model.")


def step_line(index: int, text: str, step) -> Text:
    """`Step 2: 19 - 4 = 15`, with what the model wrote when checked arithmetic corrected it."""
    line = Text(f"Step {index}: {text}")
    wrote = model_wrote(step)
    if wrote is not None:
        line.append(f"  (corrected: the model wrote {wrote})", style="bold yellow")
    return line


def variant_label(choice: ModelChoice, variant: str) -> str:
    v = next((x for x in choice.variants if x.name == variant), None)
    if v is None:
        return f"{choice.name} · {variant}"
    accuracy = v.checked_accuracy if v.checked_accuracy is not None else v.accuracy
    held_out = f" · held-out {accuracy:.0%}" if accuracy is not None else ""
    return f"{choice.name} · {variant} · {human_size(v.size_bytes)}{held_out}"


# ---------------------------------------------------------------------------------------
# dialogs


class CheckWork(ModalScreen[tuple[str, str] | None]):
    """The learner's answer and, optionally, their steps, one per line."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("[b]Check my work[/b]")
            yield Label("Your answer:")
            yield Input(placeholder="e.g. 15", id="answer")
            yield Label("Your steps, one per line (optional):")
            yield TextArea(id="steps")
            with Horizontal(id="buttons"):
                yield Button("Check", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        answer = self.query_one("#answer", Input).value
        if not answer.strip():
            self.query_one("#answer", Input).focus()
            self.notify("Type your answer first.", severity="warning")
            return
        self.dismiss((answer, self.query_one("#steps", TextArea).text))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class PickModel(ModalScreen[tuple[Path, str] | None]):
    """Every trained model and variant on disk, with its size and held-out accuracy."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, catalog: list[ModelChoice], current: tuple[Path, str] | None = None):
        super().__init__()
        self.choices = [(m, v.name) for m in catalog for v in m.variants]
        self.current = current  # the model in use, highlighted when the list opens

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("[b]Pick a model[/b]  (Enter to load, Escape to cancel)")
            if not self.choices:
                yield Label("No trained model found in models/. Train one first: "
                            "tracetutor pipeline tiny-tutor")
            options = [Option(variant_label(m, v) + ("  (default)" if m.default else ""), id=str(i))
                       for i, (m, v) in enumerate(self.choices)]
            in_use = [i for i, (m, v) in enumerate(self.choices)
                      if self.current is not None and (m.folder.resolve(), v) == self.current]
            picker = OptionList(*options, id="models")
            if in_use:
                picker.highlighted = in_use[0]
            yield picker

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        model, variant = self.choices[int(event.option.id)]
        self.dismiss((model.folder, variant))

    def action_cancel(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------------------------------
# the app


class QuestionInput(Input):
    """The question line; its keys are in the footer while it has the focus (the app's
    letter keys are typing then)."""

    BINDINGS = [Binding("enter", "submit", "Ask"), Binding("escape", "app.leave_input", "Keys")]


class TutorApp(App):
    TITLE = "tracetutor"
    CSS = """
    #model { height: 1; padding: 0 1; background: $primary-background; color: $text; }
    #loading { height: 1; display: none; }
    #loading.shown { display: block; }
    #loading LoadingIndicator { width: 8; height: 1; }
    #loading Label { width: 1fr; }
    #transcript { height: 1fr; padding: 0 1; }
    #transcript > Static { margin-bottom: 1; }
    .learner { color: $text-accent; }
    .note { color: $text-muted; }
    .error { color: $text-error; }
    .right { color: $text-success; }
    #status { height: 1; padding: 0 1; background: $panel; }
    #dialog { width: 76; height: auto; max-height: 22; padding: 1 2; border: thick $primary;
              background: $surface; }
    #dialog TextArea { height: 6; }
    #dialog OptionList { height: auto; max-height: 14; }
    #buttons { height: auto; margin-top: 1; }
    #buttons Button { margin-right: 2; }
    CheckWork, PickModel { align: center middle; }
    """
    BINDINGS = [
        Binding("s", "solve", "Solve"),
        Binding("h", "hint", "Hint"),
        Binding("c", "check", "Check"),
        Binding("v", "vote", "Vote"),
        Binding("n", "new_question", "New"),
        Binding("m", "pick_model", "Model"),
        Binding("e", "export", "Export"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, model: str | Path | None = None, variant: str | None = None, *, loader=None,
                 history: History | None = None, samples: int = 5, temperature: float = 0.7):
        super().__init__()
        self.model, self.variant = model, variant
        self.loader = loader  # (folder, variant) -> Engine; the runtime's load unless a test gives one
        self.history = history or History()
        self.samples, self.temperature = samples, temperature
        self.tutor: Tutor | None = None
        self.choice: ModelChoice | None = None
        self.question: str | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static("no model loaded", id="model")
        with Horizontal(id="loading"):
            yield LoadingIndicator()
            yield Label("", id="loading-label")
        with VerticalScroll(id="transcript"):
            yield Static(HELP, classes="note")
        yield QuestionInput(placeholder="Type a question and press Enter", id="question")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#question", Input).focus()
        model = self.model
        if model is None:
            from tracetutor.release import default_model

            try:
                model = default_model()
            except (ValueError, OSError) as e:
                self.fail("No shipped default model", e)
                self.say("Press m to pick another model.", "note")
                return
        self.load_model(model, self.variant)

    # -- transcript and status

    def say(self, text: str | Text, kind: str = "tutor") -> Static:
        """Add a message to the transcript and scroll to it."""
        message = Static(text, classes=kind)
        transcript = self.query_one("#transcript", VerticalScroll)
        transcript.mount(message)
        transcript.scroll_end(animate=False)
        return message

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def fail(self, what: str, error: BaseException) -> None:
        expected = isinstance(error, (ValueError, OSError, ImportError))
        detail = " ".join(str(error).split()) or type(error).__name__
        self.say(f"{what}: {detail if expected else type(error).__name__ + ': ' + detail}", "error")
        self.status(what)

    def save(self) -> None:
        if self.tutor is not None and self.tutor.conversation.entries:
            try:
                self.history.save(self.tutor.conversation)
            except OSError as e:
                self.say(f"Could not save the conversation: {e}", "error")

    def ready(self) -> bool:
        """Whether a new piece of work may start (one at a time, a model and a question
        needed); if not, says why."""
        if self.busy:
            self.notify("Still working: wait for it, or press n for a new question.")
            return False
        if self.tutor is None:
            self.say("No model is loaded: press m to pick one.", "error")
            return False
        if self.question is None:
            self.say("Type a question first (press n).", "note")
            self.query_one("#question", Input).focus()
            return False
        return True

    def start(self) -> bool:
        if not self.ready():
            return False
        self.busy = True
        return True

    def finish(self) -> None:
        self.busy = False
        self.save()

    # -- loading a model

    @work(thread=True, exclusive=True, group="model")
    def load_model(self, model: str | Path, variant: str | None) -> None:
        self.call_from_thread(self.show_loading, f"Loading {model}" + (f" ({variant})" if variant else "") + "…")
        try:
            from tracetutor.recipe import resolve_model

            folder, _ = resolve_model(model)
            default = default_model_folder()
            choice = describe_model(folder, default=default is not None and default.resolve() == folder.resolve())
            variant = variant or choice.preferred_variant()
            if variant is None:
                raise ValueError(f"{folder} holds no trained model or exported variant")
            engine = (self.loader or _load)(folder, variant)
        except Exception as e:  # shown in the app, which stays usable with another model
            self.call_from_thread(self.load_failed, model, e)
            return
        self.call_from_thread(self.loaded, choice, variant, engine)

    def show_loading(self, text: str) -> None:
        self.busy = True
        self.query_one("#loading-label", Label).update(text)
        self.query_one("#loading").add_class("shown")
        self.status(text)

    def load_failed(self, model, error: BaseException) -> None:
        self.query_one("#loading").remove_class("shown")
        self.busy = False
        self.fail(f"Could not load {model}", error)
        self.say("Press m to pick another model.", "note")

    def loaded(self, choice: ModelChoice, variant: str, engine) -> None:
        self.query_one("#loading").remove_class("shown")
        self.busy = False
        if self.tutor is not None and self.tutor.engine is not engine:  # one model in memory at a time
            from tracetutor.runtime import unload

            unload(self.choice.folder, self.variant)
        self.choice, self.variant = choice, variant
        self.tutor = Tutor(engine, model=choice.name)
        if self.question is not None:
            self.tutor.ask(self.question)
        label = variant_label(choice, variant)
        self.query_one("#model", Static).update(label)
        self.status(f"ready: {label}")

    # -- asking

    @on(Input.Submitted, "#question")
    def ask(self, event: Input.Submitted) -> None:
        if self.busy:
            self.notify("Still working: wait for it, then ask.")
            return
        question = event.value.strip()
        if not question:
            return
        self.question = question
        event.input.value = ""
        self.say(Text(f"You: {question}"), "learner")
        if self.tutor is not None:
            self.tutor.ask(question)
            self.save()
            self.say("s: the whole solution · h: a hint · c: check your work · v: vote", "note")
        else:
            self.say("No model is loaded: press m to pick one.", "error")
        self.query_one("#transcript").focus()

    def action_leave_input(self) -> None:
        self.query_one("#transcript").focus()

    def action_new_question(self) -> None:
        self.workers.cancel_group(self, "tutor")  # a streaming solution stops at its next token
        self.query_one("#question", Input).focus()

    # -- solve

    def action_solve(self) -> None:
        if self.start():
            message = self.say("", "tutor")
            self.status("solving…")
            self.stream_solution(message)

    @work(thread=True, exclusive=True, group="tutor")
    def stream_solution(self, message: Static) -> None:
        from tracetutor.runtime import Done, Step, Token

        worker = get_current_worker()
        text, n, first, shown = "", 0, None, 0.0
        try:
            for event in self.tutor.solve():
                if worker.is_cancelled:
                    break
                if isinstance(event, Token):
                    text += event.text
                    n += 1
                    now = time.perf_counter()
                    first = first or now
                    if now - shown > 0.05:  # redraw at most 20 times a second
                        shown = now
                        rate = f"~{(n - 1) / (now - first):.0f} tokens/s" if now > first else ""
                        self.call_from_thread(self.show_stream, message, text, f"solving… {rate}")
                elif isinstance(event, Step) and event.corrected_from is not None:
                    self.call_from_thread(self.status, f"solving… step {event.index} corrected")
                elif isinstance(event, Done):
                    self.call_from_thread(self.solved, message, event)
            if worker.is_cancelled:
                self.call_from_thread(self.status, "stopped")
        except Exception as e:
            self.call_from_thread(self.fail, "Could not solve", e)
        finally:
            self.call_from_thread(self.finish)

    def show_stream(self, message: Static, text: str, status: str) -> None:
        message.update(Text(text))
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)
        self.status(status)

    def solved(self, message: Static, done) -> None:
        worked = self.tutor.worked
        lines = [step_line(s.index, s.text, s) for s in worked.steps]
        lines.append(Text(f"Answer: {worked.answer}", style="bold") if worked.answer is not None
                     else Text("(the model wrote no answer)", style="italic"))
        message.update(Text("\n").join(lines))
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)
        self.status(stats_line(done.stats))

    # -- hint

    def action_hint(self) -> None:
        if self.start():
            self.status("thinking…" if self.tutor.worked is None else "")
            self.next_hint()

    @work(thread=True, exclusive=True, group="tutor")
    def next_hint(self) -> None:
        try:
            hint = self.tutor.hint()
            self.call_from_thread(self.show_hint, hint)
        except Exception as e:
            self.call_from_thread(self.fail, "Could not give a hint", e)
        finally:
            self.call_from_thread(self.finish)

    def show_hint(self, hint) -> None:
        if hint is None:
            self.say("No more hints: the answer is out. Press n for a new question.", "note")
        elif hint.step is not None:
            self.say(Text(f"Hint {hint.number}: ").append_text(step_line(hint.step.index, hint.step.text, hint.step)))
        elif hint.answer is not None:
            self.say(Text(f"Hint {hint.number}: Answer: {hint.answer}", style="bold"))
        else:
            self.say(f"Hint {hint.number}: the model wrote no answer.", "note")
        self.status(stats_line(self.tutor.worked.stats))

    # -- check my work

    def action_check(self) -> None:
        if self.ready():
            self.push_screen(CheckWork(), self.check_submitted)

    def check_submitted(self, work) -> None:
        if work is None or not self.start():
            return
        answer, steps = work
        self.say(Text(work_text(answer.strip(), learner_steps(steps))), "learner")
        self.status("checking…")
        self.check_work(answer, steps)

    @work(thread=True, exclusive=True, group="tutor")
    def check_work(self, answer: str, steps: str) -> None:
        try:
            result = self.tutor.check_work(answer, steps)
            self.call_from_thread(self.show_check, result)
        except Exception as e:
            self.call_from_thread(self.fail, "Could not check your work", e)
        finally:
            self.call_from_thread(self.finish)

    def show_check(self, result) -> None:
        verdict, *rest = result.message.splitlines()
        kind = "right" if result.right else "error" if result.right is False else "note"
        text = Text(verdict, style="bold")
        for line in rest:
            text.append("\n" + line, style="yellow")
        self.say(text, kind)
        self.status("checked against the model's checked solution")

    # -- self-consistency

    def action_vote(self) -> None:
        if self.start():
            self.status(f"sampling {self.samples} solutions at temperature {self.temperature}…")
            self.vote()

    @work(thread=True, exclusive=True, group="tutor")
    def vote(self) -> None:
        try:
            sol = self.tutor.vote(self.samples, self.temperature)
            self.call_from_thread(self.show_vote, sol)
        except Exception as e:
            self.call_from_thread(self.fail, "Could not sample", e)
        finally:
            self.call_from_thread(self.finish)

    def show_vote(self, sol) -> None:
        n = len(sol.traces)
        agree = round(sol.share * n)
        votes = ", ".join(f"{k}: {v}" for k, v in sol.votes.items())
        self.say(Text(f"Vote: Answer {sol.answer}, {agree} of {n} samples agree ({sol.share:.0%}); {votes}"))
        self.status(stats_line(sol.trace.stats))

    # -- models and export

    def action_pick_model(self) -> None:
        if self.busy:
            self.notify("Still working: wait for it, then pick a model.")
            return
        also = [self.choice.folder] if self.choice is not None else []
        try:
            catalog = model_catalog(also)
        except (ValueError, OSError) as e:
            self.fail("Could not list the models", e)
            return
        current = (self.choice.folder.resolve(), self.variant) if self.choice is not None else None
        self.push_screen(PickModel(catalog, current), self.model_picked)

    def model_picked(self, picked) -> None:
        if picked is not None:
            self.load_model(*picked)

    def action_export(self) -> None:
        if self.tutor is None or not self.tutor.conversation.entries:
            self.say("Nothing to export yet.", "note")
            return
        try:
            path = self.history.export(self.tutor.conversation)
        except OSError as e:
            self.fail("Could not export", e)
            return
        self.say(f"Exported this conversation to {path}", "note")


def stats_line(stats: dict) -> str:
    parts = [f"{stats['tokens_per_s']:.0f} tokens/s" if stats.get("tokens_per_s") else None,
             f"first token {stats['ttft_s'] * 1000:.0f} ms" if stats.get("ttft_s") is not None else None,
             f"{stats['n_tokens']} tokens" if stats.get("n_tokens") is not None else None]
    fixed = stats.get("corrected_steps")
    if fixed:
        parts.append(f"corrected step{'s' if len(fixed) > 1 else ''} {', '.join(map(str, fixed))}")
    return " · ".join(p for p in parts if p)


def _load(folder: Path, variant: str):
    from tracetutor.runtime import load

    return load(folder, variant)


def run(model: str | None = None, variant: str | None = None) -> None:
    TutorApp(model, variant).run()
