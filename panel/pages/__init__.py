"""Pages: comparison records, rendering, run diffs and publishing."""
