"""tracetutor.train: see DESIGN.md."""

if __name__ != "tracetutor.train":
    raise ImportError(f"import this package as tracetutor.train, not as {__name__!r}")
