"""Rewrite every golden file tests/golden/<case>.py from the current code generator.

Run from the repository root:  python tests/golden/regenerate.py
It prints which files changed; review them with ``git diff tests/golden`` before committing.
"""

import cases


def main():
    changed = []
    for name in cases.CASES:
        path = cases.golden_path(name)
        source = cases.build(name).source
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if source != old:
            path.write_text(source, encoding="utf-8", newline="\n")
            changed.append(path.relative_to(cases.ROOT))
    for path in changed:
        print(f"changed: {path}")
    print(f"{len(changed)} of {len(cases.CASES)} golden files changed")


if __name__ == "__main__":
    main()
