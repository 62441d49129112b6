"""tracetutor.export: see DESIGN.md."""

if __name__ != "tracetutor.export":
    raise ImportError(f"import this package as tracetutor.export, not as {__name__!r}")
