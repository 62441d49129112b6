"""The web tutor: a Gradio page over apps/tutoring.py, served on 127.0.0.1 and fully offline.

    tracetutor web [MODEL] [--variant V] [--host 127.0.0.1] [--port 7860]

Solve streams each step into a collapsible block as the model writes it, with the answer
below; Hint reveals one step per click and the answer last; Check my work judges the
learner's answer and names their first false step. Checked arithmetic is on by default and
every corrected step says what the model wrote. Conversations are saved as JSON (History) and
the browser remembers which one it had open, so a reload reopens it; each can be downloaded
as Markdown. Nothing leaves this machine: system fonts, Gradio's own bundled scripts and
KaTeX, no analytics, no share link.

`build_app(catalog, load=...)` takes the models to offer and a loader, so tests drive the
page with a scripted engine; `serve` is the command's entry point.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tracetutor.apps.tutoring import (Conversation, History, ModelChoice, Tutor, human_size,
                                      model_catalog, model_wrote)
from tracetutor.runtime import Answer, Done, Settings, Step, Token

DEFAULT_PORT = 7860
MAX_SAMPLES = 9
UPDATE_S = 0.05

# ---------------------------------------------------------------------------------------
# what the page shows: conversations as chat messages (no Gradio here)

_MATH = re.compile(r"(\$\$.+?\$\$|\$[^$\d\s][^$]*?\$)", re.S)  # `$5 and $6` is money, not math
_MARKUP = re.compile(r"([\\`*_\[\]<>#|~])")


def md(text: str) -> str:
    """Text as Markdown that shows it as typed: markup characters are escaped outside
    `$…$` and `$$…$$` math, and any other `$` (`$5`) is a currency sign. Gradio takes `$…$`
    out of the text before Markdown and KaTeX then reads the page's text, neither knows an
    escape: the sign is written as an entity, alone in a span, so it pairs with nothing."""
    parts = _MATH.split(text)
    for i in range(0, len(parts), 2):  # the even parts are outside math
        parts[i] = _MARKUP.sub(r"\\\1", parts[i]).replace("$", "<span>&#36;</span>")
    return "".join(parts)


def _step(d: dict | Step) -> Step:
    return d if isinstance(d, Step) else Step(d["index"], d["text"], d.get("corrected_from"))


def _confidence(logprob: float | None) -> str:
    # the mean token log-probability as a probability: quiet, beside the step
    return "" if logprob is None else f" <small>({math.exp(logprob):.0%})</small>"


def step_line(step: Step, confidence: float | None = None) -> str:
    """A step as the learner sees it: a corrected one says what the model wrote."""
    line = f"Step {step.index}: {md(step.text)}{_confidence(confidence)}"
    wrote = model_wrote(step)
    return line if wrote is None else f"{line} ✎ *corrected: the model wrote {md(wrote)}*"


def _stats_line(stats: dict, model: str) -> str:
    parts = [f"{stats['n_tokens']} tokens"] if "n_tokens" in stats else []
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']:.0f} tokens/s")
    if stats.get("ttft_s") is not None:
        parts.append(f"first token after {stats['ttft_s'] * 1000:.0f} ms")
    parts.append(" ".join(x for x in (model, stats.get("variant")) if x))
    return "<small>" + " · ".join(p for p in parts if p) + "</small>"


def solution_messages(steps: list, answer: str | None, stats: dict | None = None, model: str = "",
                      confidence: list | None = None, partial: str = "", done: bool = True) -> list[dict]:
    """The steps in a collapsible block (open, with a spinner while `done` is False) and the
    answer below it; a corrected step is also named beside the answer, where it is seen."""
    steps = [_step(s) for s in steps]
    conf = list(confidence or []) + [None] * len(steps)
    lines = [step_line(s, c) for s, c in zip(steps, conf)]
    if partial.strip():
        lines.append(md(partial))
    fixed = [s for s in steps if s.corrected_from is not None]
    meta = {"title": "Steps"}
    if done:
        meta["log"] = f"{len(steps)} step{'s' * (len(steps) != 1)}" + (f", {len(fixed)} corrected" if fixed else "")
        if stats and stats.get("total_s") is not None:
            meta["duration"] = round(stats["total_s"], 2)
    else:
        meta.update(title="Working it out…", status="pending")
    out = [{"role": "assistant", "content": "\n\n".join(lines) or "…", "metadata": meta}]
    if answer is None and not done:
        return out
    body = [f"### Answer: {md(answer)}" if answer is not None else "*The model wrote no answer.*"]
    body += [f"✎ Checked arithmetic corrected step {s.index}: the model wrote {md(model_wrote(s))}." for s in fixed]
    if stats and done:
        body.append(_stats_line(stats, model))
    out.append({"role": "assistant", "content": "\n\n".join(body)})
    return out


def _hint_message(data: dict) -> str:
    n = data["number"]
    if data.get("step"):
        return f"**Hint {n}.** {step_line(_step(data['step']))}"
    if data.get("answer") is not None:
        return f"**Hint {n}: the answer.** {md(data['answer'])}"
    return f"**Hint {n}:** the model wrote no answer."


def _check_message(data: dict) -> str:
    right, answer = data.get("right"), md(data["answer"])
    if right is None:
        verdict = "The tutor reached no answer to compare yours with."
    elif right:
        verdict = f"✓ **Right:** {answer} is the answer."
    else:
        verdict = f"✗ **Not quite:** {answer} is not the answer."
    note = data.get("step_note")
    return verdict if note is None else f"{verdict}\n\nFirst wrong step: {md(note)}"


def _vote_message(data: dict) -> str:
    n, share = data["samples"], data["share"]
    votes = ", ".join(f"{md(k)}: {v}" for k, v in data["votes"].items())
    answer = md(data["answer"]) if data.get("answer") is not None else "no answer"
    return (f"**Self-consistency:** {round(share * n)} of {n} samples agree on **{answer}** ({share:.0%}; "
            f"temperature {data['temperature']:g}). Votes: {votes}")


def chat_messages(conv: Conversation | None) -> list[dict]:
    """A conversation as Gradio chat messages (what a reload or reopening shows)."""
    out = []
    for e in conv.entries if conv else []:
        if e.kind == "question":
            out.append({"role": "user", "content": md(e.text)})
        elif e.kind == "work":
            out.append({"role": "user", "content": "  \n".join(md(line) for line in e.text.splitlines())})
        elif e.kind == "solution":
            out += solution_messages(e.data["steps"], e.data["answer"], e.data.get("stats"), conv.model,
                                     e.data.get("step_confidence"))
        elif e.kind == "hint":
            out.append({"role": "assistant", "content": _hint_message(e.data)})
        elif e.kind == "check":
            out.append({"role": "assistant", "content": _check_message(e.data)})
        elif e.kind == "vote":
            out.append({"role": "assistant", "content": _vote_message(e.data)})
    return out


def model_label(m: ModelChoice) -> str:
    return f"{m.name} (default)" if m.default else m.name


def variant_label(v) -> str:
    label = f"{v.name} · {human_size(v.size_bytes)}"
    return label if v.accuracy is None else f"{label} · {v.accuracy:.0%}"


def variant_summary(v) -> str:
    """Size and held-out accuracy, plain and with checked arithmetic, where known."""
    parts = [human_size(v.size_bytes)]
    if v.accuracy is not None:
        parts.append(f"held-out accuracy {v.accuracy:.0%}")
    if v.checked_accuracy is not None:
        parts.append(f"{v.checked_accuracy:.0%} with checked arithmetic")
    return ", ".join(parts)


def benchmark_view(m: ModelChoice | None) -> tuple[str, list[Path]]:
    """The latest benchmark of a model: report.md (or a table from bench.json) and its plots."""
    if m is None:
        return "No model is selected.", []
    folder = m.folder
    report, bench = folder / "report.md", folder / "bench.json"
    plots = sorted(folder.glob("*.png"))
    if report.is_file():
        # the plots are shown below as images; a Markdown image (maybe remote) is never fetched
        text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", report.read_text(encoding="utf-8", errors="replace"))
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.stat().st_mtime))
        return f"*Report of {when}, {report}*\n\n{text}", plots
    if bench.is_file():
        return _bench_table(m), plots
    return (f"**No benchmark yet for {m.name}.** Run `tracetutor pipeline {m.name}` (a recipe) or "
            f"`tracetutor bench {folder} --variants all --out {folder}` to make one."), plots


def _bench_table(m: ModelChoice) -> str:
    rows = ["| variant | size | held-out accuracy | with checked arithmetic |", "|---|---|---|---|"]
    for v in m.variants:
        acc = "–" if v.accuracy is None else f"{v.accuracy:.1%}"
        checked = "–" if v.checked_accuracy is None else f"{v.checked_accuracy:.1%}"
        rows.append(f"| {v.name} | {human_size(v.size_bytes)} | {acc} | {checked} |")
    return f"*From {m.folder / 'bench.json'}*\n\n" + "\n".join(rows)


# ---------------------------------------------------------------------------------------
# the app


def _load_engine(folder: Path, variant: str):
    from tracetutor.runtime import load

    return load(folder, variant)


@dataclass
class Session:
    """One browser tab: the model it uses and its conversation. The Tutor is made again when
    the model or its settings change; the conversation goes on."""

    engine: object = None
    model: ModelChoice | None = None
    conversation: Conversation | None = None
    tutor: Tutor | None = None
    tutor_key: tuple = ()

    def tutor_for(self, check: bool, temperature: float) -> Tutor:
        if self.engine is None:
            raise ValueError("no model is loaded: pick a model and a variant")
        key = (id(self.engine), check, temperature)
        if self.tutor is None or key != self.tutor_key:
            if self.conversation is None:
                self.conversation = Conversation.start(self.model.name, self.engine.variant)
            self.tutor = Tutor(self.engine, check=check, settings=Settings(logprobs=True, temperature=temperature),
                               model=self.model.name, conversation=self.conversation)
            self.tutor_key = key
        return self.tutor

    def ask(self, question: str, check: bool, temperature: float) -> Tutor:
        """The tutor, asked `question` unless it is the one it is on (so hints go on)."""
        tutor = self.tutor_for(check, temperature)
        if tutor.question != (question or "").strip():
            tutor.ask(question)
        return tutor


THEME_FONTS = ["Segoe UI", "Roboto", "Helvetica Neue", "Ubuntu", "Cantarell", "Noto Sans", "DejaVu Sans",
               "Arial", "sans-serif"]
MONO_FONTS = ["SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "DejaVu Sans Mono", "monospace"]
CSS = "#status { min-height: 2.5em }"
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def build_app(catalog: list[ModelChoice], load: Callable = _load_engine, start: tuple[str, str] | None = None,
              history: History | None = None, notice: str = ""):
    """The tutor page over `catalog`. `load(folder, variant)` gives an engine (the runtime's
    cached loader by default); `start` is the (folder, variant) selected first (the first
    model's preferred variant by default, none if `notice` says why); conversations are kept
    in `history`; `notice` is shown above the model picker."""
    import gradio as gr

    history = history or History()
    by_folder = {str(m.folder): m for m in catalog}
    exports = Path(tempfile.mkdtemp(prefix="tracetutor-web-"))  # the Markdown downloads; gone with the app
    if start is None and catalog and not notice:
        start = (str(catalog[0].folder), catalog[0].preferred_variant())
    folder0, variant0 = start or (None, None)

    def variant_choices(folder: str | None):
        m = by_folder.get(folder or "")
        return [(variant_label(v), v.name) for v in m.variants] if m else []

    def history_choices():
        return [(f"{c.started.replace('T', ' ')} · {c.title(60)} · {c.model}", c.id) for c in history.list()]

    def export(conv: Conversation | None):
        if conv is None or not conv.entries:
            return gr.update(value=None, interactive=False)
        return gr.update(value=str(history.export(conv, exports / f"tracetutor-{conv.id}.md")), interactive=True)

    def saved(session: Session):
        """After an exchange: the conversation saved, its Markdown ready, the browser told."""
        conv = session.conversation
        history.save(conv)
        return (chat_messages(conv), export(conv), gr.update(choices=history_choices(), value=conv.id),
                {"open": conv.id})

    def fail(e: Exception):
        return gr.Error(" ".join(str(e).split()) or type(e).__name__, print_exception=False)

    def benchmark(m: ModelChoice | None):
        from PIL import Image

        text, plots = benchmark_view(m)
        # opened here, so Gradio serves copies and no model folder needs to be shared
        return text, [(Image.open(p), p.stem.replace("_", " ")) for p in plots]

    # -- events (a session is None until its first event, for a client without the page)

    def on_load(browser: dict | None):
        session = Session()
        conv_id = (browser or {}).get("open")
        if conv_id:
            try:
                session.conversation = history.load(conv_id)
            except (ValueError, OSError):
                pass  # deleted or damaged: start afresh
        conv = session.conversation
        return (session, chat_messages(conv), gr.update(choices=history_choices(), value=conv.id if conv else None),
                export(conv))

    def on_model(folder: str):
        m = by_folder.get(folder)
        return gr.update(choices=variant_choices(folder), value=m.preferred_variant() if m else None)

    def on_variant(session: Session | None, folder: str, variant: str):
        session = session or Session()
        m = by_folder.get(folder or "")
        bench = benchmark(m)
        if m is None or not variant:
            msg = "Pick a model and a variant." if catalog else "**No trained model found**: reload this page after making one."
            yield session, msg, *bench
            return
        about = next((variant_summary(v) for v in m.variants if v.name == variant), "")
        yield session, f"Loading **{m.name}** {variant} ({about})…", *bench
        t0 = time.perf_counter()
        try:
            engine = load(m.folder, variant)
        except (ValueError, OSError, ImportError) as e:
            session.engine, session.tutor = None, None
            yield (session, f"⚠ **Could not load {m.name} ({variant}):** {md(' '.join(str(e).split()))}\n\n"
                            "Pick another model or variant.", *bench)
            return
        if session.engine is not None and session.engine is not engine:
            session.conversation = None  # another model: a new conversation (the old one is in History)
        session.engine, session.model, session.tutor = engine, m, None
        yield (session, f"✓ **{m.name}** {variant} is ready ({about}; "
                        f"loaded in {time.perf_counter() - t0:.1f} s)", *bench)

    def on_solve(session: Session | None, question: str, check: bool, samples: int, temperature: float):
        session = session or Session()
        try:
            tutor = session.ask(question, check, temperature)
            yield from solving(session, tutor, samples, temperature)
        except (ValueError, OSError) as e:  # an empty or over-long question, bad settings, history not saved
            raise fail(e) from None

    def solving(session: Session, tutor: Tutor, samples: int, temperature: float):
        before = chat_messages(session.conversation)
        steps, text, answer, done = [], "", None, None
        shown = 0.0  # when the page was last updated
        for event in tutor.solve():
            if isinstance(event, Token):
                text += event.text
            elif isinstance(event, Step):
                steps.append(event)
            elif isinstance(event, Answer):
                answer = event.text
            elif isinstance(event, Done):
                done = event
            # every step and the answer at once; the line being written at most 20 times a second
            if isinstance(event, (Step, Answer)) or (isinstance(event, Token) and time.monotonic() - shown > UPDATE_S):
                partial = text.rpartition("\n")[2] if answer is None else ""
                live = solution_messages(steps, answer, model=session.model.name, partial=partial, done=False)
                yield session, before + live, gr.update(), gr.update(), gr.update()
                shown = time.monotonic()
        entry = session.conversation.entries[-1]
        if done is not None and done.step_confidence and entry.kind == "solution":
            entry.data["step_confidence"] = done.step_confidence
        if samples > 1:
            note = {"role": "assistant", "content": f"Sampling {samples} solutions…",
                    "metadata": {"title": "Self-consistency", "status": "pending"}}
            yield session, chat_messages(session.conversation) + [note], gr.update(), gr.update(), gr.update()
            tutor.vote(samples, temperature)
        yield session, *saved(session)

    def on_hint(session: Session | None, question: str, check: bool, temperature: float):
        session = session or Session()
        try:
            hint = session.ask(question, check, temperature).hint()
            shown = saved(session)
        except (ValueError, OSError) as e:
            raise fail(e) from None
        if hint is None:
            gr.Info("No more hints: the answer is out. Ask another question, or check your own work.")
        return session, *shown

    def on_check(session: Session | None, question: str, answer: str, steps: str, check: bool, temperature: float):
        session = session or Session()
        try:
            session.ask(question, check, temperature).check_work(answer, steps)
            return session, *saved(session)
        except (ValueError, OSError) as e:
            raise fail(e) from None

    def on_new(session: Session | None):
        session = session or Session()
        session.conversation, session.tutor = None, None
        return session, [], export(None), gr.update(value=None), {"open": None}

    def on_open(session: Session | None, conv_id: str | None):
        session = session or Session()
        try:
            session.conversation = history.load(conv_id) if conv_id else None
        except (ValueError, OSError) as e:
            raise fail(e) from None
        session.tutor = None
        return session, chat_messages(session.conversation), export(session.conversation), {"open": conv_id}

    # -- layout

    with gr.Blocks(title="tracetutor", analytics_enabled=False) as app:
        session = gr.State(None)
        browser = gr.BrowserState({"open": None}, storage_key="tracetutor-web")
        gr.Markdown("## tracetutor\nA step-by-step arithmetic tutor running on this computer. Ask a question, "
                    "take a hint, or check your own working.")
        with gr.Row():
            with gr.Column(scale=5):
                with gr.Tabs():
                    with gr.Tab("Tutor", id="tutor"):
                        chat = gr.Chatbot(elem_id="chat", height=480, latex_delimiters=LATEX, show_label=False,
                                          buttons=["copy", "copy_all"], placeholder="Ask a word problem below.")
                        question = gr.Textbox(label="Question", elem_id="question", lines=2,
                                              placeholder="Mia has 8 apples, gets 11 more and eats 4. "
                                                          "How many are left?")
                        with gr.Row():
                            solve_btn = gr.Button("Solve", variant="primary", elem_id="solve")
                            hint_btn = gr.Button("Hint (one step)", elem_id="hint")
                        with gr.Accordion("Check my work", open=False, elem_id="check-panel"):
                            my_answer = gr.Textbox(label="Your answer", elem_id="my-answer")
                            my_steps = gr.Textbox(label="Your steps (optional, one per line)", lines=3,
                                                  elem_id="my-steps", placeholder="8 + 11 = 19\n19 - 4 = 15")
                            check_btn = gr.Button("Check my work", elem_id="check")
                        with gr.Row():
                            new_btn = gr.Button("New conversation", size="sm", elem_id="new")
                            export_btn = gr.DownloadButton("Export as Markdown", size="sm", interactive=False,
                                                           elem_id="export")
                    with gr.Tab("History", id="history"):
                        saved_convs = gr.Dropdown(label="Saved conversations (open one to go on with it)",
                                                  choices=[], elem_id="history-list")
                    with gr.Tab("Benchmark", id="benchmark"):
                        bench_md = gr.Markdown(elem_id="benchmark")
                        bench_plots = gr.Gallery(label="Plots", columns=2, height="auto", object_fit="contain",
                                                 elem_id="plots")
            with gr.Column(scale=2, min_width=300):
                gr.Markdown(f"⚠ {md(notice)}", visible=bool(notice), elem_id="notice")
                model_dd = gr.Dropdown([(model_label(m), str(m.folder)) for m in catalog], value=folder0,
                                       label="Model", elem_id="model")
                variant_dd = gr.Dropdown(variant_choices(folder0), value=variant0, elem_id="variant",
                                         label="Variant (size, held-out accuracy)")
                status = gr.Markdown(elem_id="status")
                checked = gr.Checkbox(True, label="Checked arithmetic", elem_id="checked",
                                      info="A step whose result is false is corrected and marked.")
                samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Self-consistency samples",
                                    elem_id="samples", info="Above 1, Solve also samples this many solutions "
                                                            "and shows the vote share.")
                temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.1, label="Temperature", elem_id="temperature",
                                        info="0 is greedy; the samples use 0.7 when this is 0.")

        model_io = dict(concurrency_id="model", concurrency_limit=1)  # an engine is not thread-safe
        loading = dict(fn=on_variant, inputs=[session, model_dd, variant_dd],
                       outputs=[session, status, bench_md, bench_plots], **model_io)
        exchange = [session, chat, export_btn, saved_convs, browser]
        app.load(on_load, [browser], [session, chat, saved_convs, export_btn]).then(**loading, api_name="load_model")
        model_dd.input(on_model, [model_dd], [variant_dd]).then(**loading)
        variant_dd.input(**loading)
        solve_btn.click(on_solve, [session, question, checked, samples, temperature], exchange, api_name="solve",
                        **model_io)
        question.submit(on_solve, [session, question, checked, samples, temperature], exchange, **model_io)
        hint_btn.click(on_hint, [session, question, checked, temperature], exchange, api_name="hint", **model_io)
        check_btn.click(on_check, [session, question, my_answer, my_steps, checked, temperature], exchange,
                        api_name="check", **model_io)
        weakref.finalize(app, shutil.rmtree, exports, ignore_errors=True)
        for trigger in (new_btn.click, chat.clear):  # the chat's bin starts afresh too (the old one is in History)
            trigger(on_new, [session], [session, chat, export_btn, saved_convs, browser])
        saved_convs.input(on_open, [session, saved_convs], [session, chat, export_btn, browser])
    return app


def launch(app, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
    """Serve `app` in a background thread; its URL. Offline: no share link, no server-side
    rendering (a Node process), system fonts only."""
    import gradio as gr

    theme = gr.themes.Default(primary_hue="indigo", font=THEME_FONTS, font_mono=MONO_FONTS)
    try:
        app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, inbrowser=False, quiet=True,
                   prevent_thread_lock=True, show_error=True, theme=theme, css=CSS, footer_links=["settings"])
    except OSError as e:
        raise OSError(f"cannot serve at {_where(host, port)}: {e}") from None
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{app.server_port}/"


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_address(host: str, port: int) -> None:
    """OSError naming host and port if the tutor could not listen there (before any work)."""
    from tracetutor.runtime.server import listen

    listen(host, port).close()


def catalog_for(model=None, variant: str | None = None) -> tuple[list[ModelChoice], tuple[str, str] | None, str]:
    """The catalog with `model` (a recipe name, file or folder; the shipped default if None)
    in it, what to select first, and what went wrong finding it ("" if nothing): a missing
    model or variant is said in the page, which stays usable with the others."""
    from tracetutor.release import default_model

    folder = None
    try:
        folder = default_model() if model is None else _resolve(model)
    except (ValueError, OSError) as e:
        problem = " ".join(str(e).split())
    catalog = model_catalog(also=[folder] if folder is not None else [])
    picked = next((m for m in catalog if folder is not None and m.folder.resolve() == folder.resolve()), None)
    if folder is None:
        return catalog, None, problem
    if picked is None:
        return catalog, None, f"{folder} holds no trained model or exported variant"
    names = [v.name for v in picked.variants]
    if variant is not None and variant not in names:
        return (catalog, (str(picked.folder), picked.preferred_variant()),
                f"{picked.name} has no variant {variant!r} (variants on disk: {', '.join(names)}); "
                f"{picked.preferred_variant()} is selected instead")
    return catalog, (str(picked.folder), variant or picked.preferred_variant()), ""


def _resolve(model) -> Path:
    from tracetutor.recipe import resolve_model

    return resolve_model(model)[0]


def serve(model=None, variant: str | None = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """`tracetutor web`: the tutor page until interrupted. The address is checked before
    Gradio starts; the model loads in the page, with progress, and a missing one is said there."""
    check_address(host, port)
    catalog, start, notice = catalog_for(model, variant)
    app = build_app(catalog, start=start, notice=notice)
    url = launch(app, host, port)
    print(f"tracetutor web tutor at {url}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        app.close()
