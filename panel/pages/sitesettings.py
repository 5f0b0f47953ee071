"""The site's settings file: its name, base URL, description and newsletter sign-up block.

    # site.yaml (the working directory's, or --site-settings FILE)
    name: Panel Verdicts
    base_url: https://verdicts.example.com/
    description: Reviewer-panel verdicts on developer tools, side by side.
    newsletter:
      heading: The Friday Panel
      text: One email a week with the tools our reviewers would ship, and why.
      link: https://verdicts.example.com/subscribe
      button: Subscribe

Read only through the project's safe YAML loader (no tags, no aliases, size-capped, strings
stay strings); every field is optional; URLs keep only allow-listed schemes. Every page renders
what is set (the name and a link to the index in its header, the description and canonical /
Open Graph URLs in its head, the newsletter block at its foot) and nothing of what is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from panel.errors import InputError
from panel.inputs.yamlsafe import YamlInputError, load_yaml

SETTINGS_FILE = "site.yaml"
SETTINGS_MAX_BYTES = 64 * 1024
_SHORT = 200
_LONG = 1000


def _url(value: str | None) -> str | None:
    from panel.pages.render import safe_url  # render imports this module's model

    if value is None:
        return None
    if safe_url(value) is None or not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


class Newsletter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    heading: str = Field(max_length=_SHORT)
    text: str = Field(default="", max_length=_LONG)
    link: str
    button: str = Field(default="Subscribe", max_length=_SHORT)

    @field_validator("link")
    @classmethod
    def _check_link(cls, value: str) -> str:
        return _url(value) or value


class SiteSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=_SHORT)
    base_url: str | None = None
    description: str = Field(default="", max_length=_LONG)
    newsletter: Newsletter | None = None

    @field_validator("base_url")
    @classmethod
    def _check_base(cls, value: str | None) -> str | None:
        return _url(value)

    def page_url(self, slug: str) -> str | None:
        """The page's absolute URL, when a base URL is set."""
        if not self.base_url:
            return None
        return self.base_url.rstrip("/") + f"/{slug}.html"


def load_site_settings(path: Path) -> SiteSettings:
    """A settings file; an InputError naming the file and the field when it is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read site settings: {exc.strerror}") from None
    try:
        data: Any = load_yaml(raw, max_bytes=SETTINGS_MAX_BYTES).data
    except YamlInputError as exc:
        raise InputError(f"{path}: invalid site settings: {exc.message}") from None
    if data is None:
        return SiteSettings()
    if not isinstance(data, dict):
        raise InputError(f"{path}: site settings must be a mapping (name, base_url, newsletter)")
    try:
        return SiteSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: site settings field {where!r}: {first['msg']}") from None


def find_site_settings(given: Path | None, cwd: Path | None = None) -> SiteSettings | None:
    """`--site-settings FILE` if given, else `site.yaml` in the working directory, else None."""
    if given is not None:
        return load_site_settings(given)
    default = (cwd or Path.cwd()) / SETTINGS_FILE
    if default.is_file() and not default.is_symlink():
        return load_site_settings(default)
    return None


__all__ = [
    "SETTINGS_FILE",
    "Newsletter",
    "SiteSettings",
    "find_site_settings",
    "load_site_settings",
]
