"""Personas: personas/*.md, YAML front matter plus a body (the brief and the voice)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RubricQuestion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    question: str


class Persona(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    title: str
    order: int
    lens: str
    rubric: list[RubricQuestion]
    ship_bar: str  # what earns a ship from this persona
    body: str  # the brief and the voice, markdown
    path: str = ""
    digest: str = ""  # "sha256:…" of the file bytes

    @property
    def rubric_ids(self) -> list[str]:
        return [q.id for q in self.rubric]


class PersonaSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    personas: list[Persona] = Field(default_factory=list)  # in display order
