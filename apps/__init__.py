"""tracetutor.apps: see DESIGN.md."""

if __name__ != "tracetutor.apps":
    raise ImportError(f"import this package as tracetutor.apps, not as {__name__!r}")
