"""Inputs: tool files, persona files, the workspace, safe YAML, prompt templates, text safety."""
