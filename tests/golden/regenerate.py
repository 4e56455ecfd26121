"""Rewrite every golden file tests/golden/<case>.py, and the generated listing the README shows,
from the current code generator.

Run from the repository root:  python tests/golden/regenerate.py
It prints which files changed; review them with ``git diff tests/golden README.md`` before committing.
"""

import contextlib
import io
import re

import cases

README = cases.ROOT / "README.md"
EXAMPLE = re.compile(r"## Fifteen lines\n\n```python\n(.*?)```", re.S)  # the code tests/test_readme.py runs
LISTING = re.compile(r"`print\(f\.source\)` shows.*?```python\n(.*?)```", re.S)  # what it shows


def readme_listing() -> str:
    """The README with its generated listing replaced by what its example prints today."""
    text = README.read_text(encoding="utf-8")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(EXAMPLE.search(text).group(1), "README example", "exec"), {})  # the README's own code
    output = printed.getvalue()
    function = output[output.index("@_checked("):].rstrip("\n") + "\n"  # the function, after the helpers
    listing = LISTING.search(text)
    return text[: listing.start(1)] + function + text[listing.end(1):]


CUPY_SECTION = re.compile(r"## On a GPU: the CuPy backend\n.*?```python\n(.*?)```\n\n```python\n(.*?)```", re.S)
CUPY_LINES = ("cp.dot(x, W1, out=buf1)", "h = tanh_kernel(", "# new W1_m, W1_v", "update_kernel(W1_m")


def readme_cupy_excerpt(text: str) -> str:
    """The README with its CuPy excerpt (the fused Adam kernel, then a few lines of the step) taken
    from the golden module mlp_adam_cupy_train_step."""
    golden = cases.golden_path("mlp_adam_cupy_train_step").read_text(encoding="utf-8")
    start = golden.index("# update_kernel:")
    end = golden.index("\"\"\", 'update_kernel')", start) + len("\"\"\", 'update_kernel')")
    lines = [line for line in golden.splitlines() if any(key in line for key in CUPY_LINES)]
    section = CUPY_SECTION.search(text)
    return (text[: section.start(1)] + golden[start:end] + "\n" + text[section.end(1): section.start(2)]
            + "\n".join(lines) + "\n" + text[section.end(2):])


def main():
    changed = []
    for name in cases.CASES:
        path = cases.golden_path(name)
        source = cases.build(name).source
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if source != old:
            path.write_text(source, encoding="utf-8", newline="\n")
            changed.append(path.relative_to(cases.ROOT))
    readme = readme_cupy_excerpt(readme_listing())
    if readme != README.read_text(encoding="utf-8"):
        README.write_text(readme, encoding="utf-8", newline="\n")
        changed.append(README.relative_to(cases.ROOT))
    for path in changed:
        print(f"changed: {path}")
    print(f"{len(changed)} of {len(cases.CASES) + 1} generated files changed (golden modules and README listing)")


if __name__ == "__main__":
    main()
