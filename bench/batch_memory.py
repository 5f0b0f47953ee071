"""Peak RSS of `panel batch` over N tools × 4 personas (default 2,500 × 4 = 10,000 pairs).

    /work/venv/bin/python bench/batch_memory.py [--tools 2500] [--via stream|batch-api]

The emulator runs in this process (latency 0; its request log is its own memory); the batch
runs in a child process, whose peak RSS (getrusage RUSAGE_CHILDREN) is the number printed.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from panel.emulator.runner import run_emulator
from panel.emulator.state import EmulatorConfig

TOOL = """name: Bench Tool {n:05d}
category: Developer Tools
tagline: Synthetic tool {n} for the memory benchmark
pricing: Free
description: |
  Bench Tool {n:05d} is a synthetic developer tool. It indexes a repository, answers
  questions about it and proposes edits a developer reviews; variant {n} keeps {n} workers.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", type=int, default=2500)
    ap.add_argument("--via", default="stream")
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_emulator(EmulatorConfig(latency_scale=0.0)) as emu,
    ):
        root = Path(tmp)
        (root / "tools").mkdir()
        for i in range(args.tools):
            (root / "tools" / f"t{i:05d}.yaml").write_text(TOOL.format(n=i))
        (root / "m.yaml").write_text(
            "tools: [tools/*.yaml]\nmodel: emulator:claude-sonnet-5\n"
            f"concurrency: {args.concurrency}\nvia: {args.via}\n"
        )
        env = {**os.environ, "PANEL_EMULATOR_URL": emu.base_url}
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "panel", "batch", str(root / "m.yaml"), "--json"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads(out.stdout) if out.stdout.strip() else {"error": out.stderr[-2000:]}
        print(
            json.dumps(
                {
                    "pairs": args.tools * 4,
                    "via": args.via,
                    "ok": summary.get("ok"),
                    "peak_rss_mb": round(peak_mb, 1),
                    "seconds": round(elapsed, 1),
                    **({"error": summary["error"]} if "error" in summary else {}),
                }
            )
        )


if __name__ == "__main__":
    main()
