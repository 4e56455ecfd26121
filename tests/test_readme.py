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


def test_readme_rule_table_lists_every_rule_with_its_algebra():
    from symgraph.rules import RULE_SETS

    text = README.read_text()
    rows = re.findall(r"^\| (\w+) \| `(\w+)`( \(unsafe\))? \| (.*) \|$", text, re.M)
    table = {rule: (family, bool(unsafe), algebra) for family, rule, unsafe, algebra in rows}
    for rule_set in RULE_SETS:
        for rule in rule_set.rules:
            assert table.get(rule.name) == (rule_set.name, rule.unsafe, rule.doc), rule.name
    assert "fuse_elementwise" in table
    assert len(table) == sum(len(s.rules) for s in RULE_SETS) + 1  # no stale rows
