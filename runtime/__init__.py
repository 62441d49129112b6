"""tracetutor.runtime: see DESIGN.md."""

if __name__ != "tracetutor.runtime":
    raise ImportError(f"import this package as tracetutor.runtime, not as {__name__!r}")
