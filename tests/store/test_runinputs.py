"""The run's copy of its inputs: exact (digests match the manifest), whole or absent, read back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from panel.digests import digest
from panel.errors import RunStoreError
from panel.runformat import InputDigest, Inputs
from panel.store.runinputs import (
    INPUTS_DIR,
    InputFile,
    copy_name,
    read_input_copy,
    write_input_copy,
)

TOOL = b"name: Alpha\ndescription: |\n  A tool.\n"
PERSONA = b"---\nid: skeptic\n---\nbody\n"
HOUSE = "House rules \u2014 ship or not.\n".encode()


def inputs() -> Inputs:
    return Inputs(
        tools={"alpha": InputDigest(path="tools/alpha.yml", digest=digest(TOOL))},
        personas={"skeptic": InputDigest(path="/x/personas/skeptic.md", digest=digest(PERSONA))},
        templates={"house.j2": digest(HOUSE)},
        verdict_schema="sha256:schema",
        settings="sha256:settings",
    )


FILES = [
    InputFile("tools", "alpha", TOOL),
    InputFile("personas", "skeptic", PERSONA),
    InputFile("prompts", "house.j2", HOUSE),
]


def test_the_copy_holds_each_file_under_its_key_with_the_manifest_digest(tmp_path: Path) -> None:
    write_input_copy(tmp_path, inputs(), FILES)
    folder = tmp_path / INPUTS_DIR
    assert (folder / "tools" / "alpha.yaml").read_bytes() == TOOL  # by slug, always .yaml
    assert (folder / "personas" / "skeptic.md").read_bytes() == PERSONA
    assert (folder / "prompts" / "house.j2").read_bytes() == HOUSE
    copy = read_input_copy(tmp_path, inputs())
    assert copy.complete and copy.get("tools", "alpha") == TOOL
    assert copy.path("personas", "skeptic") == folder / "personas" / "skeptic.md"
    assert [p.name for p in tmp_path.iterdir()] == [INPUTS_DIR]  # no temp folder left


def test_a_file_that_does_not_match_its_digest_writes_nothing(tmp_path: Path) -> None:
    edited = [*FILES[:2], InputFile("prompts", "house.j2", HOUSE + b"edited\n")]
    with pytest.raises(RunStoreError, match=r"prompts/house.j2 changed while the run started"):
        write_input_copy(tmp_path, inputs(), edited)
    with pytest.raises(RunStoreError, match="not an input of the run"):
        write_input_copy(tmp_path, inputs(), [InputFile("tools", "beta", TOOL)])
    assert list(tmp_path.iterdir()) == []


def test_an_existing_copy_is_never_replaced(tmp_path: Path) -> None:
    write_input_copy(tmp_path, inputs(), FILES)
    with pytest.raises(OSError):
        write_input_copy(tmp_path, inputs(), FILES[:1])
    assert read_input_copy(tmp_path, inputs()).complete
    assert sorted(p.name for p in tmp_path.iterdir()) == [INPUTS_DIR]


def test_an_old_run_has_no_copy_and_every_input_is_missing(tmp_path: Path) -> None:
    copy = read_input_copy(tmp_path, inputs())
    assert copy.files == {} and not copy.complete
    assert copy.missing == ["personas/skeptic.md", "prompts/house.j2", "tools/alpha.yaml"]
    assert copy.path("tools", "alpha") is None


def test_a_tampered_or_symlinked_file_is_missing_never_trusted(tmp_path: Path) -> None:
    write_input_copy(tmp_path, inputs(), FILES)
    folder = tmp_path / INPUTS_DIR
    (folder / "tools" / "alpha.yaml").write_bytes(TOOL + b"# edited by hand\n")
    secret = tmp_path / "secret.md"
    secret.write_bytes(PERSONA)
    os.unlink(folder / "personas" / "skeptic.md")
    os.symlink(secret, folder / "personas" / "skeptic.md")
    copy = read_input_copy(tmp_path, inputs())
    assert copy.missing == ["personas/skeptic.md", "tools/alpha.yaml"]
    assert copy.get("prompts", "house.j2") == HOUSE


@pytest.mark.parametrize("key", ["../x", ".hidden", "a/b", "", "x" * 200])
def test_a_hand_edited_manifest_key_never_becomes_a_path(key: str) -> None:
    with pytest.raises(RunStoreError, match="unsafe input name"):
        copy_name("tools", key)
