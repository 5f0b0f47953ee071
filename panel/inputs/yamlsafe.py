"""The one safe YAML loader for every input file: size cap, no tags, no aliases, strings kept.

Why not plain ``yaml.safe_load``: it turns ``name: no`` into False, ``version: 1.10`` into 1.1
and ``2024-01-01`` into a date (B03), and it expands aliases, so a few hundred bytes of
"billion laughs" become gigabytes (B02). This loader keeps every plain scalar a string
(pydantic coerces where a number is wanted), refuses anchors, aliases and explicit tags while
composing — before anything is constructed — and caps size and nesting depth.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node

MAX_YAML_BYTES = 256 * 1024
MAX_DEPTH = 32

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
# What a composed node may be tagged with: plain strings, null, and the two collections.
_ALLOWED_TAGS = {_STR, _NULL, "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


class YamlInputError(ValueError):
    """A YAML document this loader refuses; line and col are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


@dataclass(frozen=True)
class YamlDocument:
    """The loaded data and where each top-level key sits (1-based line, col)."""

    data: Any
    key_marks: dict[str, tuple[int, int]] = field(default_factory=dict)


class _StringResolver(yaml.resolver.BaseResolver):
    """Resolves plain scalars to str, or to null only when empty or ``~``/``null``."""


# Only null keeps an implicit resolver: bool, int, float and timestamp all stay strings.
_StringResolver.add_implicit_resolver(
    _NULL,
    re.compile(r"^(?:~|null|Null|NULL|)$"),
    ["~", "n", "N", ""],
)


class _StrictComposer(yaml.composer.Composer):
    """Refuses aliases, anchors, explicit tags and deep nesting while composing."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        mark = event.start_mark
        if isinstance(event, AliasEvent):
            raise _refusal("aliases (*name) are not allowed", mark)
        if isinstance(event, ScalarEvent | CollectionStartEvent):
            if event.anchor is not None:
                raise _refusal("anchors (&name) are not allowed", mark)
            if event.tag not in (None, "!"):
                raise _refusal(f"explicit tags are not allowed (found {event.tag!r})", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _refusal(f"nesting deeper than {MAX_DEPTH} levels", mark)
            node: Node | None = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None and node.tag not in _ALLOWED_TAGS:
            raise _refusal(f"unsupported YAML type {node.tag!r}", mark)
        return node


class _StringLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _StrictComposer,
    yaml.constructor.SafeConstructor,
    _StringResolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _StrictComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _StringResolver.__init__(self)


def _refusal(problem: str, mark: Any) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=mark)


def decode_utf8(data: bytes) -> str:
    """Decode strictly; invalid UTF-8 is an error naming the line and byte, never replaced."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlInputError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            line=line,
        ) from None


def load_yaml(data: bytes | str, *, max_bytes: int = MAX_YAML_BYTES) -> YamlDocument:
    """Parse one YAML document safely; raises YamlInputError with line and col."""
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        # Checked before the parser sees a byte: a huge file costs nothing.
        raise YamlInputError(f"file is {size:,} bytes, over the {max_bytes:,}-byte cap")
    text = decode_utf8(data) if isinstance(data, bytes) else data
    parsed = _parsed(text)
    return YamlDocument(data=copy.deepcopy(parsed.data), key_marks=dict(parsed.key_marks))


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> YamlDocument:
    """The document in `text`, parsed once per process: a batch or a library user's loop loads
    the same persona and tool files for every run, and PyYAML's pure-Python parser is slow.
    Refusals are raised every time (an exception is not cached); `load_yaml` hands out copies."""
    try:
        # The reader refuses control bytes (NUL, BEL, ESC) as it is built: inside the try,
        # so one bad byte is this file's error, never a crash of the whole load.
        loader = _StringLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlInputError(
            f"control character U+{code:04X} is not allowed in YAML; remove it",
            line,
            col,
        ) from None
    try:
        node = loader.get_single_node()
        marks = _key_marks(node)
        value = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            raise YamlInputError(problem) from None
        raise YamlInputError(problem, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise YamlInputError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YamlInputError(f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    return YamlDocument(data=value, key_marks=marks)


def _key_marks(node: Node | None) -> dict[str, tuple[int, int]]:
    if not isinstance(node, MappingNode):
        return {}
    marks: dict[str, tuple[int, int]] = {}
    for key, _value in node.value:
        line, col = key.start_mark.line + 1, key.start_mark.column + 1
        if isinstance(key.value, str):
            if key.value in marks:
                # PyYAML would silently keep the last one; the author meant one of them.
                raise YamlInputError(f"duplicate key {key.value!r}", line, col)
            marks[key.value] = (line, col)
    return marks


__all__ = ["MAX_YAML_BYTES", "YamlDocument", "YamlInputError", "decode_utf8", "load_yaml"]
