"""The trace record (DESIGN.md), its JSONL files, and its text format for the student."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Trace:
    """One problem with its step-by-step solution; the same schema for every source."""

    id: str
    question: str
    steps: list[str]
    answer: str
    source: str = "synth"
    family: str | None = None
    difficulty: int | None = None
    checks: dict | None = None
    extra: dict = field(default_factory=dict)  # unknown keys, kept so nothing is lost
