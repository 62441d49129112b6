"""tracetutor.runtime: ask a model questions through torch, onnxruntime or llama.cpp.

    from tracetutor.runtime import load, Settings
    tutor = load("models/tiny-tutor", variant="gguf-q8_0")
    for event in tutor.stream(question, Settings(check=True)):   # Token, Step, Answer, Done
        ...

`types` holds what every part shares (Settings, the Backend protocol, the events); the
backends import it and never the engine, so loading one backend pulls in nothing else.
"""

if __name__ != "tracetutor.runtime":
    raise ImportError(f"import this package as tracetutor.runtime, not as {__name__!r}")

from .types import Answer, Backend, Done, Event, Settings, Solution, Step, Token  # noqa: E402

__all__ = ["load", "unload", "Engine", "Settings", "Backend", "Token", "Step", "Answer", "Done", "Solution", "Event"]


def __getattr__(name: str):
    # the engine (and what it imports) loads only when asked for
    if name in ("load", "unload", "Engine"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'tracetutor.runtime' has no attribute {name!r}")
