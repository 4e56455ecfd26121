"""Running the example scripts as a user would, for the example tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name, *args, timeout=180):
    """Run examples/<name> from the repository root in a fresh process; return its stdout."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def value_after(label, out):
    """The rest of the one line that starts with ``label``."""
    lines = [line[len(label) :].strip() for line in out.splitlines() if line.startswith(label)]
    assert len(lines) == 1, f"expected one line starting with {label!r}, got {len(lines)}:\n{out}"
    return lines[0]
