"""tracetutor: verified reasoning traces to a tiny tutor on a laptop."""

__version__ = "0.1.0"
