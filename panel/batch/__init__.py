"""Batch regeneration: manifests, incremental runs and the providers' batch services."""
