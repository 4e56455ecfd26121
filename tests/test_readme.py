"""The README's fifteen-line example runs, and the code it shows is what symgraph generates today."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_shows_the_current_generated_code(capsys):
    text = README.read_text()
    example = re.search(r"## Fifteen lines\n\n```python\n(.*?)```", text, re.S).group(1)
    shown = re.search(r"`print\(f\.source\)` shows.*?```python\n(.*?)```", text, re.S).group(1)
    exec(compile(example, "README example", "exec"), {})  # prints f.source
    printed = capsys.readouterr().out
    assert shown.strip() in printed, "README's generated code is stale: regenerate it from the example"
