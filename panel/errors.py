"""panel's exceptions, and the fixed set of failure classes every upstream fault maps to.

    PanelError                       base; every error panel raises on purpose
    ├── InputError                   a tool, persona, manifest or template is unusable
    │   ├── ToolFileError            (path, line, col, field)
    │   ├── PersonaError             (path, field)
    │   └── TemplateError            (template name)
    ├── ConfigError                  no key for the chosen provider, unknown model, bad option
    ├── RunStoreError                a run folder is missing, locked by another process, corrupt
    │   └── NewerFormatError         (panel.store.runs) written by a newer panel: upgrade to read it
    ├── PublishError                 publishing failed, or the site target is unsafe
    │   └── GateRefused              a page gate refused (flips, incomplete, synthetic): exit 1
    └── UpstreamError                a provider call failed; carries an ErrorClass
        (raised by providers, classified once in panel.providers.classify, recorded as data by the
         engine: one persona failing never fails the panel)

Domain errors become CLI errors at exactly one boundary (panel.cli), with a message that
says how to fix the problem: one line on stderr and exit 2 (docs/reliability.md, "Exit codes").
OSError is the one foreign exception that boundary also turns into a line (a full disk, a
read-only folder). Internal signals never reach a user; each is caught where it is raised:
`YamlInputError`, `UnsafeFileError` (→ ToolFileError / PersonaError / InputError at the
loaders), `VerdictProblem` (→ ErrorClass.SCHEMA_INVALID), `RunPaused` (→ a paused run),
the stream reader's `StreamErrorEvent` (→ an UpstreamError classified in the provider),
the engine's `_Stopped` (→ the pair stays pending), the result cache's `CorruptEntry` (→ a
logged miss), and the emulator's `FaultSpecError` / `CacheControlError` / `BadRequest`
(→ an API-shaped 400) and `ConnectionReset` (its reset fault).
tests/architecture/test_errors.py keeps this tree closed: a new exception class is a
deliberate, reviewed change.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from panel.redact import redact


class ErrorClass(StrEnum):
    """The fixed set of failure classes (docs/reliability.md)."""

    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    TRUNCATED_MAX_TOKENS = "truncated_max_tokens"
    TRUNCATED_EOF = "truncated_eof"
    PROTOCOL = "protocol"
    NO_TOOL_CALL = "no_tool_call"
    INVALID_JSON = "invalid_json"
    SCHEMA_INVALID = "schema_invalid"
    REFUSED = "refused"
    SPEND_CAP = "spend_cap"
    AUTH = "auth"
    INVALID_REQUEST = "invalid_request"
    CONTEXT_TOO_LONG = "context_too_long"


class PanelError(Exception):
    """Base of every error panel raises on purpose."""

    exit_code = 2  # the CLI's exit code for it (docs/reliability.md, "Exit codes")


class InputError(PanelError):
    pass


class ToolFileError(InputError):
    def __init__(
        self,
        message: str,
        path: Path | str,
        line: int | None = None,
        col: int | None = None,
        field: str | None = None,
    ) -> None:
        where = str(path)
        if line is not None:
            where += f":{line}" + (f":{col}" if col is not None else "")
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.col, self.field = str(path), line, col, field


class PersonaError(InputError):
    def __init__(self, message: str, path: Path | str, field: str | None = None) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.field = str(path), field


class TemplateError(InputError):
    def __init__(self, message: str, template: str) -> None:
        super().__init__(f"template {template}: {message}")
        self.template = template


class ConfigError(PanelError):
    pass


class RunStoreError(PanelError):
    pass


class PublishError(PanelError):
    pass


class GateRefused(PublishError):
    """A publish gate said no (flips, incomplete or synthetic pages): nothing changed, exit 1."""

    exit_code = 1


class UpstreamError(PanelError):
    """A provider call failed. Never carries the request (its headers hold the API key)."""

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        billed: bool = False,
        raw_text: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        # The one redaction step for upstream text: it may echo the request's headers.
        message = redact(message)
        super().__init__(f"{error_class.value}: {message}")
        self.error_class = error_class
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.request_id = request_id
        self.billed = billed
        self.raw_text = redact(raw_text[:4000]) if raw_text else raw_text  # size-capped
        self.usage = usage
