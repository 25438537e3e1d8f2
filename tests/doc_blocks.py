"""The fenced code blocks of the README and of docs/*.md, with how each one is run.

A block tagged ``bash``, ``sh``, ``shell`` or ``console`` is a shell block; ``python`` or
``py`` a Python block; an untagged or ``text`` block is a picture and is not run. Any other
tag is an error, so that no command escapes the test by an unusual tag.

An HTML comment on the line just before a block says how it runs::

    <!-- doc-test: background, ready="http://127.0.0.1:8000/healthz", stop="make stop" -->
    <!-- doc-test: ready="supervisorctl -c supervisor/supervisord.conf status" -->
    <!-- doc-test: needs postgres -->
    <!-- doc-test: skip reason="installs from the package index" -->

``background``: started in its own process group and left running until the page ends (then
``stop`` runs, or SIGTERM); ``ready``: after the block starts (background) or returns, wait
until the condition holds: an ``http://`` URL answers 200, ``output:TEXT`` appears in the
background block's output, or else a shell command exits 0; ``timeout``: seconds for ``ready``
(default 120); ``needs postgres``: PostgreSQL must be installed; ``skip``: not run, with a
``reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SHELL_TAGS = frozenset({"bash", "sh", "shell", "console"})
PYTHON_TAGS = frozenset({"python", "py"})
PICTURE_TAGS = frozenset({"", "text"})
OPTIONS = frozenset({"background", "ready", "stop", "needs postgres", "skip", "reason",
                     "timeout"})

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<tag>[^\s`{]*)")
_DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:(?P<body>.*?)-->\s*$")
_OPTION = re.compile(r'\s*(?P<key>needs\s+postgres|[a-z]+)\s*(?:=\s*"(?P<value>[^"]*)")?\s*,?')


class DocBlockError(ValueError):
    """A block or its directive cannot be understood."""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and its directive's options."""

    path: Path
    line: int
    kind: str  # "shell" or "python"
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def background(self) -> bool:
        return "background" in self.options

    @property
    def skipped(self) -> bool:
        return "skip" in self.options

    @property
    def needs_postgres(self) -> bool:
        return "needs postgres" in self.options


def parse_directive(body: str, where: str) -> dict[str, str]:
    """The options of ``<!-- doc-test: BODY -->``."""
    options: dict[str, str] = {}
    rest = body.strip()
    while rest:
        match = _OPTION.match(rest)
        if match is None or not match.group(0):
            raise DocBlockError(f"{where}: cannot read the doc-test directive at {rest!r}")
        key = " ".join(match.group("key").split())
        if key not in OPTIONS:
            raise DocBlockError(f"{where}: unknown doc-test option {key!r} "
                                f"(known: {', '.join(sorted(OPTIONS))})")
        options[key] = match.group("value") or ""
        rest = rest[match.end():].strip()
    if "skip" in options and not options.get("reason"):
        raise DocBlockError(f"{where}: a skipped block needs a reason=\"...\"")
    return options


def _console_commands(code: str) -> str:
    """The commands of a ``console`` block: its ``$ `` lines, without the prompt."""
    return "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ "))


def blocks_of(path: Path) -> list[Block]:
    """Every runnable or skipped block of the Markdown file ``path``, in order.

    Raises:
        DocBlockError: a block with an unknown tag, an unclosed fence or a bad directive.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, tag = opening["indent"], opening["fence"], opening["tag"].lower()
        start = index
        where = f"{path.name}:{start + 1}"
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            text = lines[index]
            body.append(text[len(indent):] if text.startswith(indent) else text.lstrip())
            index += 1
        if index == len(lines):
            raise DocBlockError(f"{where}: the block is never closed")
        index += 1
        directive = None
        if start > 0:
            directive = _DIRECTIVE.match(lines[start - 1])
        options = parse_directive(directive["body"], where) if directive else {}
        code = "\n".join(body) + "\n"
        if tag in PICTURE_TAGS:
            if options:
                raise DocBlockError(f"{where}: a doc-test directive on a block that is not run")
            continue
        if tag in SHELL_TAGS:
            kind = "shell"
            if tag == "console":
                code = _console_commands(code)
        elif tag in PYTHON_TAGS:
            kind = "python"
        else:
            raise DocBlockError(
                f"{where}: unknown block tag {tag!r}: tag it bash or python to run it, or text "
                f"(or nothing) for a picture that is not run")
        if kind == "python" and options.get("background") is not None:
            raise DocBlockError(f"{where}: only a shell block runs in the background")
        blocks.append(Block(path, start + 1, kind, code, options))
    # A directive must sit on a block: one left on its own is a mistake.
    for number, text in enumerate(lines):
        if _DIRECTIVE.match(text) and (number + 1 >= len(lines)
                                       or not _FENCE.match(lines[number + 1])):
            raise DocBlockError(f"{path.name}:{number + 1}: a doc-test directive must be on "
                                f"the line just before a block")
    return blocks


def documentation_files(root: Path) -> list[Path]:
    """The README and every page of docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]
