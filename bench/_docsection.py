"""Writing one benchmark's section of ``docs/performance.md`` in place."""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, heading: str, section: str, gap: str = "") -> None:
    """Replace the ``## heading`` section of ``doc`` by ``section`` (or append it).

    ``gap`` goes between the new section and the one that follows it.
    """
    text = doc.read_text() if doc.exists() else "# Performance\n"
    start = text.find(f"## {heading}\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (gap + text[end + 1 :] if end != -1 else "")
    doc.write_text(text)
