"""Templates come from pull requests: the sandbox they run in, and the files they may load.

Jinja's `SandboxedEnvironment` stops attribute tricks, not resource use, and its
`FileSystemLoader` follows symlinks anywhere (`{% include "env.j2" %}` → `/proc/self/environ`
would send the environment upstream in every prompt). Here:

- `SafeTemplateLoader` loads only regular files inside the template folders, through
  `inputs.safefiles` (no symlink out, no FIFO, no device), at most `MAX_TEMPLATE_BYTES` each;
- `BoundedSandbox` bounds what a template can compute: `*`, `**` and `+` are checked before
  they run (`{{ 'x' * 10**9 }}` is refused, not evaluated), every `range()` of one render
  shares a budget of `MAX_ITERATIONS` items, a filter or call given a number over
  `MAX_ARGUMENT` is refused, and a render stops at `MAX_OUTPUT` characters.

Every refusal is a `jinja2.sandbox.SecurityError`, which `prompts` turns into one-line
TemplateError before any request.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from panel.inputs.safefiles import UnsafeFileError, read_input_file

MAX_TEMPLATE_BYTES = 256 * 1024
MAX_OUTPUT = 512 * 1024  # characters one render may produce
MAX_ITERATIONS = 100_000  # range() items per render, all loops together
MAX_ARGUMENT = 100_000  # the largest number a filter or call may be given (widths, counts)
_MAX_POWER = 64


class SafeTemplateLoader(jinja2.BaseLoader):
    """Templates from the folders (earlier wins), regular files inside them only."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = [Path(d) for d in dirs]

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = jinja2.loaders.split_template_path(template)  # refuses ".." and the like
        for folder in self.dirs:
            path = folder.joinpath(*pieces)
            if not os.path.lexists(path):
                continue
            try:
                data = read_input_file(path, MAX_TEMPLATE_BYTES, roots=[folder])
                if path.resolve().is_relative_to(folder.resolve()) is False:
                    raise UnsafeFileError("outside the template folder")
            except (UnsafeFileError, OSError) as exc:
                raise SecurityError(f"{template}: not loaded: {exc}") from None
            if len(data) > MAX_TEMPLATE_BYTES:
                raise SecurityError(f"{template}: over the {MAX_TEMPLATE_BYTES:,}-byte cap")
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError:
                raise SecurityError(f"{template}: not valid UTF-8") from None
            mtime = path.stat().st_mtime

            def fresh(path: Path = path, mtime: float = mtime) -> bool:
                return path.exists() and path.stat().st_mtime == mtime

            return source, str(path), fresh
        raise jinja2.TemplateNotFound(template)


def _check_number(value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
        raise SecurityError(f"a number over {MAX_ARGUMENT:,} ({value!r:.20}) is not allowed")


def _bounded(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps jinja's pass_context / pass_environment marks
    def call(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _check_number(value)
        result = function(*args, **kwargs)
        if isinstance(result, str) and len(result) > MAX_OUTPUT:
            raise SecurityError(f"a filter produced over {MAX_OUTPUT:,} characters")
        return result

    return call


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


class BoundedSandbox(SandboxedEnvironment):
    """A sandbox whose arithmetic, loops, filters and output are bounded (see module doc)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._iterations = 0
        self.filters = {name: _bounded(f) for name, f in self.filters.items()}
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range

    def _range(self, *args: int) -> range:
        for value in args:
            _check_number(value)
        items = range(*args)
        self._iterations += len(items)
        if self._iterations > MAX_ITERATIONS:
            raise SecurityError(f"loops over more than {MAX_ITERATIONS:,} items in one render")
        return items

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "**":
            _check_number(left)
            if isinstance(right, int | float) and abs(right) > _MAX_POWER:
                raise SecurityError(f"an exponent over {_MAX_POWER} is not allowed")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) and isinstance(n, int) and _size(seq) * n > MAX_OUTPUT:
                    raise SecurityError(f"a repetition over {MAX_OUTPUT:,} characters")
        if operator == "+" and _size(left) + _size(right) > MAX_OUTPUT:
            raise SecurityError(f"a concatenation over {MAX_OUTPUT:,} characters")
        return super().call_binop(context, operator, left, right)

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        for value in (*args, *kwargs.values()):
            _check_number(value)
        return super().call(__context, __obj, *args, **kwargs)

    def render_bounded(self, template: jinja2.Template, variables: dict[str, object]) -> str:
        """Render with a fresh loop budget, stopping at MAX_OUTPUT characters."""
        self._iterations = 0
        out: list[str] = []
        size = 0
        chunks: Iterator[str] = template.generate(variables)
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"the template produced over {MAX_OUTPUT:,} characters")
            out.append(chunk)
        return "".join(out)


__all__ = ["MAX_OUTPUT", "BoundedSandbox", "SafeTemplateLoader", "SecurityError"]
