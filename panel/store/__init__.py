"""The run store: run folders, atomic writes, JSON Schemas and the result cache."""
