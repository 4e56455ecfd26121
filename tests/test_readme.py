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
    assert shown.strip() in printed, "README's generated code is stale: run python tests/golden/regenerate.py"


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


def _training_blocks():
    section = re.search(r"\n## Training a network\n(.*?)\n## ", README.read_text(), re.S).group(1)
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return [compile(code, "README training section", "exec") for code in blocks]


def test_readme_training_section_trains_and_resumes(tmp_path, monkeypatch, capsys):
    import symgraph as sg

    define, fit, by_hand = _training_blocks()
    monkeypatch.chdir(tmp_path)
    for run in range(2):  # the script run twice: the second run resumes from mlp.npz and has nothing left to do
        with sg.fresh_graph():  # as in a new process: layers are numbered from 1 again
            namespace = {}
            exec(define, namespace)
            exec(fit, namespace)
        history = namespace["history"]
        assert history["resumed_from"] == (0 if run == 0 else 10)
        assert len(history["epoch"]) == (10 if run == 0 else 0)
        assert namespace["accuracy"]() > 0.9
    assert "after epoch 10 of 10: nothing left to train" in capsys.readouterr().err
    with sg.fresh_graph():
        namespace = {}
        exec(define, namespace)
        exec(by_hand, namespace)
        assert namespace["accuracy"]() > 0.9
