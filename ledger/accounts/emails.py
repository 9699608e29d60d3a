"""Email addresses as people type them: trimmed, one @, no spaces or control characters, at most
254 characters. Case is kept as typed; uniqueness and look-ups ignore it (seed 000)."""

from __future__ import annotations

import re

SHAPE = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
MAX_CHARS = 254


def clean_email(value: str) -> str:
    """The address, trimmed; ValueError (in words) when it is not one."""
    text = value.strip()
    if len(text) > MAX_CHARS or not SHAPE.fullmatch(text):
        raise ValueError("that is not an email address (name@example.com)")
    return text
