"""Check CUDA kernel sources with the real CUDA compiler, where one is installed.

The emulated CuPy compiles kernels with the host C++ compiler, which accepts things CUDA
does not (and the reverse); ``check_with_nvcc`` compiles the same sources for a GPU so
tests can catch both. Kernels are written into one ``.cu`` file per nvcc process, two
(more only where names repeat: ``extern "C"`` kernel names must be unique per file; each
source sits in its own namespace, so helper functions of different kernels do not clash),
and the files are compiled at once down to a cubin, so ``ptxas`` runs too and reports
register spills.

CuPy compiles with NVRTC, which includes no headers; nvcc includes ``cuda_runtime.h``, so
a kernel using host-side headers would pass here and fail in CuPy. Kernels that include
nothing and use the built-in math functions compile the same way in both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_DEFAULT_PATH = "/usr/local/cuda/bin/nvcc"
_PARALLEL = 2


class NvccError(Exception):
    """nvcc rejected a kernel; the message holds its diagnostics and the file it compiled."""


def nvcc_available() -> tuple[bool, str]:
    """(True, path of nvcc) or (False, why there is none)."""
    path = shutil.which("nvcc") or (_DEFAULT_PATH if os.access(_DEFAULT_PATH, os.X_OK) else None)
    if path is None:
        return False, f"nvcc is neither on PATH nor at {_DEFAULT_PATH}"
    return True, path


def check_with_nvcc(kernels, arch: str = "compute_80") -> list[str]:
    """Compile every (name, source) of ``kernels`` with nvcc for ``arch``; its warnings.

    ``arch`` is a virtual architecture (``compute_80``) or a real one (``sm_80``); the
    sources are compiled for the real one, through ptxas (``-Xptxas -warn-spills``).
    Raises NvccError with nvcc's messages when a file does not compile, RuntimeError when
    there is no nvcc.
    """
    found, nvcc = nvcc_available()
    if not found:
        raise RuntimeError(nvcc)
    match = re.fullmatch(r"(?:compute|sm)_(\d+\w*)", arch)
    if match is None:
        raise ValueError(f"arch must look like 'compute_80' or 'sm_80', got {arch!r}")
    files = _files(list(kernels))
    with tempfile.TemporaryDirectory(prefix="symgraph_nvcc_") as work:
        paths = []
        for i, text in enumerate(files):
            path = Path(work) / f"kernels_{i}.cu"
            path.write_text(text)
            paths.append(path)
        command = [nvcc, "--cubin", f"-arch=sm_{match.group(1)}", "-Xptxas", "-warn-spills,-warn-lmem-usage"]
        with ThreadPoolExecutor(_PARALLEL) as pool:
            runs = list(pool.map(lambda p: subprocess.run([*command, "-o", os.devnull, str(p)],
                                                          capture_output=True, text=True), paths))
    warnings = []
    for text, run in zip(files, runs):
        output = (run.stdout + run.stderr).strip()
        if run.returncode != 0:
            numbered = "\n".join(f"{i:4d} | {line}" for i, line in enumerate(text.splitlines(), 1))
            raise NvccError(f"nvcc failed:\n{output}\n\nfile:\n{numbered}")
        warnings += [line for line in output.splitlines() if re.search(r"\bwarning\b", line, re.I)]
    return warnings


def _files(kernels: list[tuple[str, str]]) -> list[str]:
    """The ``.cu`` texts: one per nvcc process (more only where names repeat), each kernel
    in the emptiest file not holding its name yet (identical (name, source) pairs once),
    its source numbered from 1 as ``name.cu``."""
    unique = list(dict.fromkeys((name, source) for name, source in kernels))
    files: list[dict[str, str]] = [{} for _ in range(min(_PARALLEL, len(unique)))]
    for name, source in unique:
        target = min((f for f in files if name not in f), key=len, default=None)
        if target is None:
            files.append(target := {})
        target[name] = source
    return ["".join(f'namespace symgraph_source_{i} {{\n#line 1 "{name}.cu"\n{source}\n}}\n'
                    for i, (name, source) in enumerate(f.items())) for f in files]
