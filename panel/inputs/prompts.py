"""Prompt templates: one sandboxed Jinja2 environment, three templates, in cache order.

``house.j2`` (shared by every request of a run: rendered once), ``persona.j2`` (one persona's
brief and rubric: rendered once per persona) and ``tool.j2`` (the untrusted tool block, the
only part that varies per request). Untrusted text is passed as values, never compiled as a
template, so ``{{ 7*7 }}`` in a description stays ``{{ 7*7 }}`` (B09); a template that names an
undefined variable fails with TemplateError when the set is loaded, before any request (B10).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.bccache

from panel.digests import digest
from panel.errors import TemplateError
from panel.houserules import banned_words
from panel.inputs.personas import Persona, RubricQuestion
from panel.inputs.sandbox import BoundedSandbox, SafeTemplateLoader
from panel.inputs.textsafety import neutralise_delimiters
from panel.inputs.tools import LoadedTool, ToolLink, ToolSpec
from panel.providers.base import PromptParts
from panel.tokens import canonical_json
from panel.verdict import QUOTE_MAX_WORDS, QUOTE_MIN_WORDS, TOOL_NAME

TEMPLATE_NAMES = ("house.j2", "persona.j2", "tool.j2")
BEGIN = "=====BEGIN UNTRUSTED TOOL DATA {nonce}====="
END = "=====END UNTRUSTED TOOL DATA {nonce}====="


@dataclass(frozen=True)
class ToolView:
    """What tool.j2 sees: the spec's text, single-line fields flattened, delimiters defused."""

    name: str
    category: str
    tagline: str
    pricing: str
    description: str
    community_votes: int | None
    links: tuple[ToolLink, ...]


def tool_view(spec: ToolSpec) -> ToolView:
    def line(text: str) -> str:
        return " ".join(neutralise_delimiters(text).split())

    return ToolView(
        name=line(spec.name),
        category=line(spec.category),
        tagline=line(spec.tagline),
        pricing=spec.pricing,
        description=neutralise_delimiters(spec.description),
        community_votes=spec.community_votes,
        links=tuple(ToolLink(label=line(x.label), url=line(x.url)) for x in spec.links),
    )


def tool_nonce(spec: ToolSpec) -> str:
    """16 hex characters derived from the tool's content: stable across personas and runs.

    The nonce is a hash of the very text it encloses, so a description cannot contain its
    own closing line: it would have to contain a preimage of itself.
    """
    return hashlib.sha256(canonical_json(spec.model_dump()).encode()).hexdigest()[:16]


def _xattr(value: object) -> str:
    return html.escape(str(value), quote=True)


def _xtext(value: object) -> str:
    return html.escape(str(value), quote=False)


class _CompiledPrompts(jinja2.BytecodeCache):
    """Compiled prompt templates, kept for the life of the process.

    Every PromptSet builds its own environment, and compiling the house templates again was most
    of its cost (a batch builds one per run). jinja keys each entry by the template's name and
    file and checks a checksum of its source before using it, so an edited template compiles
    afresh. Shared only by `_environment`'s environments: their options shape the compiled code.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledPrompts()


def _environment(loader: jinja2.BaseLoader) -> BoundedSandbox:
    env = BoundedSandbox(
        loader=loader,
        bytecode_cache=_COMPILED,
        undefined=jinja2.StrictUndefined,
        # Prompts, not HTML: escaping would garble the text the model reads. Untrusted values
        # are delimited by tool.j2 instead, and persona attributes use the xattr filter.
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["xattr"] = _xattr
    env.filters["xtext"] = _xtext
    return env


_PROBE_PERSONA = Persona(
    id="probe",
    name="Probe",
    title="template check",
    order=0,
    lens="checks that the templates render",
    rubric=[RubricQuestion(id="probe", question="Does it render?")],
    ship_bar="renders",
    body="A persona used only to check the templates before any request.",
)
_PROBE_TOOL = ToolSpec(
    name="Probe", tagline="checks templates", description="A tool used to check templates.",
    pricing="Free", links=[ToolLink(label="home", url="https://example.invalid")],
    community_votes=1,
)  # fmt: skip


class PromptSet:
    """The three templates of a run, loaded once; the house block rendered once."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = [Path(d) for d in dirs]
        # Regular files inside the folders only; what a template computes is bounded too.
        self._loader = SafeTemplateLoader(self.dirs)
        self._env = _environment(self._loader)
        self._templates: dict[str, jinja2.Template] = {}
        self._sources: dict[str, str] = {}
        for name in TEMPLATE_NAMES:
            try:
                self._templates[name] = self._env.get_template(name)
                source = self._loader.get_source(self._env, name)[0]
            except jinja2.TemplateNotFound:
                searched = ", ".join(str(d) for d in self.dirs) or "(no folders)"
                raise TemplateError(f"not found in {searched}", name) from None
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"line {exc.lineno}: {exc.message}", name) from None
            except jinja2.TemplateError as exc:  # a refused file (symlink out, FIFO, …)
                raise TemplateError(str(exc), name) from None
            self._sources[name] = source
        self._persona_cache: dict[str, str] = {}
        self.house = self._render("house.j2", self._house_vars())
        # Render the other two once with probe values so an undefined variable fails now.
        self._render("persona.j2", {"persona": _PROBE_PERSONA})
        self._render("tool.j2", self._tool_vars(_PROBE_TOOL))

    @staticmethod
    def _house_vars() -> dict[str, object]:
        return {
            "verdict_tool": TOOL_NAME,
            "quote_min_words": QUOTE_MIN_WORDS,
            "quote_max_words": QUOTE_MAX_WORDS,
            # The one banned-word list (panel.houserules), which the lint reads too.
            "banned_words": banned_words(),
        }

    @staticmethod
    def _tool_vars(spec: ToolSpec) -> dict[str, object]:
        return {"tool": tool_view(spec), "nonce": tool_nonce(spec), "verdict_tool": TOOL_NAME}

    def _render(self, name: str, variables: dict[str, object]) -> str:
        try:
            return self._env.render_bounded(self._templates[name], variables).strip() + "\n"
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"undefined variable: {exc.message}", name) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(" ".join(str(exc).split()), name) from None
        except (ArithmeticError, TypeError, ValueError, RecursionError, MemoryError) as exc:
            # What a template's own arithmetic can raise: one line, never a traceback.
            raise TemplateError(f"{type(exc).__name__}: {exc}", name) from None

    def template_digests(self) -> dict[str, str]:
        """``{"house.j2": "sha256:…", …}`` of each template's source."""
        return {name: digest(src) for name, src in self._sources.items()}

    def template_sources(self) -> dict[str, str]:
        """``{"house.j2": source, …}``: the exact text each digest names (a run copies it)."""
        return dict(self._sources)

    def render_house(self) -> str:
        return self.house

    def render_persona(self, persona: Persona) -> str:
        """The persona block; cached per persona digest (and id, for in-memory personas)."""
        key = persona.id + "\0" + (persona.digest or canonical_json(persona.model_dump()))
        if key not in self._persona_cache:
            self._persona_cache[key] = self._render("persona.j2", {"persona": persona})
        return self._persona_cache[key]

    def render_tool(self, tool: LoadedTool | ToolSpec) -> str:
        spec = tool.spec if isinstance(tool, LoadedTool) else tool
        return self._render("tool.j2", self._tool_vars(spec))

    def prepare(self, personas: Sequence[Persona]) -> None:
        """Render every persona block now, so a bad persona fails before any request."""
        for persona in personas:
            self.render_persona(persona)


def load_prompts(dirs: Sequence[Path]) -> PromptSet:
    """Load the three templates from the folders (earlier folders win, file by file)."""
    return PromptSet(dirs)


def render_prompt(
    persona: Persona, tool: LoadedTool | ToolSpec, templates: PromptSet
) -> PromptParts:
    """The prompt for one (persona, tool) pair, in cache order."""
    return PromptParts(
        house=templates.render_house(),
        persona=templates.render_persona(persona),
        tool=templates.render_tool(tool),
    )


__all__ = [
    "BEGIN",
    "END",
    "TEMPLATE_NAMES",
    "PromptSet",
    "ToolView",
    "load_prompts",
    "render_prompt",
    "tool_nonce",
    "tool_view",
]
