"""Tool files: the YAML descriptions of the software tools a panel reviews.

Loading (safe YAML, size cap, errors with path:line:col and field) lives in load_tools().
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Pricing = Literal["Free", "Freemium", "Paid", "Open source", "Enterprise"]


class ToolLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    label: str
    url: str


class ToolSpec(BaseModel):
    """One tool as its file describes it. Every text field is untrusted."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    category: str = "Developer Tools"
    tagline: str
    description: str
    pricing: Pricing
    links: list[ToolLink] = Field(default_factory=list)
    community_votes: int | None = None


class LoadedTool(BaseModel):
    """A tool with where it came from: the slug is unique within a run and path-safe."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spec: ToolSpec
    slug: str
    path: str
    digest: str  # "sha256:…" of the file bytes
    warnings: list[str] = Field(default_factory=list)  # e.g. invisible characters stripped
