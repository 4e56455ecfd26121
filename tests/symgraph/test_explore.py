"""sg.explore: the page is self-contained, draws every node and every code line, maps them to each
other correctly, and works in a real headless Chromium (click a node, step a sweep)."""

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import codegen
import symgraph as sg


def _network():
    x = sg.placeholder("x", (4, 2))
    W = sg.parameter("W", np.linspace(-1, 1, 6).reshape(2, 3))
    w = sg.parameter("w", np.array([0.5, -1.0, 2.0]))
    h = sg.tanh(x @ W).named("h")
    loss = sg.mean(sg.square(h @ w - 1.0)).named("loss")
    return x, W, w, h, loss


FEED_X = np.arange(8.0).reshape(4, 2) / 8
ROOT = Path(__file__).resolve().parents[2]


def _data(page: str) -> dict:
    return json.loads(re.search(r"const DATA = (.*);\n", page).group(1))


def test_the_page_is_self_contained_with_one_element_per_node_and_per_line(tmp_path):
    x, W, w, h, loss = _network()
    outputs = [loss, *sg.grad(loss, [W, w])]
    path = sg.explore(outputs, tmp_path / "page.html", feed={x: FEED_X})
    page = open(path).read()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)  # nothing fetched
    assert "<link" not in page and "<script src" not in page
    order = sg.topo_sort(outputs)  # explore compiles without the simplifier: the nodes as built
    source = codegen.compile([x], outputs, simplify=False, memory_plan=False).source
    assert page.count('<g class="node ') == len(order)
    assert [int(i) for i in re.findall(r'<g class="node \w+" id="node-(\d+)"', page)] == list(range(len(order)))
    lines = re.findall(r'<span class="line" id="line-(\d+)" data-line="\d+"><span class="ln">\d+</span>(.*?)\n</span>',
                       page, re.S)
    assert [int(k) for k, _ in lines] == list(range(1, len(source.splitlines()) + 1))
    assert [html.unescape(t) for _, t in lines] == source.splitlines()


def test_each_node_maps_to_the_lines_that_compute_it(tmp_path):
    x, W, w, h, loss = _network()
    path = sg.explore(loss, tmp_path / "page.html", feed={"x": FEED_X})
    page = open(path).read()
    data = _data(page)
    source = codegen.compile([x], loss, simplify=False, memory_plan=False).source.splitlines()
    nodes = {n["name"]: n for n in data["nodes"]}
    (tanh_line,) = nodes["h"]["lines"]
    assert re.match(r"\s+h = np\.tanh\(", source[tanh_line - 1])
    (loss_line,) = nodes["loss"]["lines"]
    assert re.match(r"\s+loss = ", source[loss_line - 1])
    assert nodes["x"]["lines"] == [] and nodes["W"]["kind"] == "parameter"
    # a value folded into its user's line maps to that line: every op node maps to some line
    for n in data["nodes"]:
        if n["kind"] == "op":
            assert n["lines"], n
            assert all(0 < k <= len(source) for k in n["lines"])
    folded = [n["name"] for n in data["nodes"] if n["kind"] == "op" and n["lines"] == [loss_line]]
    assert len(folded) >= 2  # loss, and the square (at least) inlined into it
    # a line lists the node whose statement it is first, then the values folded into it
    assert [data["nodes"][i]["name"] for i in data["lineNodes"][str(loss_line)]][0] == "loss"
    assert sorted(data["nodes"][i]["name"] for i in data["lineNodes"][str(loss_line)]) == sorted(folded)
    for k, owners in data["lineNodes"].items():
        assert all(int(k) in data["nodes"][i]["lines"] for i in owners)


@pytest.mark.parametrize("memory_plan", [False, True])
def test_compile_records_the_lines_computing_each_node(memory_plan):
    x, W, w, h, loss = _network()
    f = codegen.compile([x], [loss, *sg.grad(loss, [W, w])], memory_plan=memory_plan)
    source = f.source.splitlines()
    assert f.line_of and set(f.line_of) <= set(f.name_of)
    for key, numbers in f.line_of.items():
        assert numbers == sorted(numbers) and source[numbers[-1] - 1].count(f.name_of[key])
    seen = [k for numbers in f.line_of.values() for k in numbers]
    assert len(seen) == len(set(seen))  # a line computes one node


def test_the_forward_sweep_shows_each_value_in_the_order_the_code_computes_it(tmp_path):
    x, W, w, h, loss = _network()
    data = _data(open(sg.explore(loss, tmp_path / "p.html", feed={x: FEED_X})).read())
    forward, reverse = data["sweeps"]
    assert forward["name"] == "forward" and reverse["name"] == "reverse"
    names = [data["nodes"][s["nodes"][0]]["name"] for s in forward["steps"]]
    assert names.index("x") < names.index("h") < names.index("loss") == len(names) - 1
    value = codegen.evaluate(loss, {x: FEED_X})
    assert forward["steps"][-1]["value"] == np.array2string(value, precision=4, suppress_small=True)
    (h_step,) = [s for s in forward["steps"] if data["nodes"][s["nodes"][0]]["name"] == "h"]
    assert h_step["value"].startswith("[[") and h_step["lines"] == data["nodes"][h_step["nodes"][0]]["lines"]


def test_the_reverse_sweep_steps_through_the_adjoints_on_their_nodes_and_lines(tmp_path):
    x, W, w, h, loss = _network()
    outputs = [loss, *sg.grad(loss, [W, w])]
    data = _data(open(sg.explore(outputs, tmp_path / "p.html", feed={x: FEED_X}, wrt=[W, w])).read())
    forward, reverse = data["sweeps"]
    steps = {s["label"].split(" = ")[0]: s for s in reverse["steps"]}
    assert list(steps)[0] == "grad_loss" and {"grad_h", "grad_W", "grad_w"} <= set(steps)
    grads = codegen.compile([x], outputs, simplify=False)(FEED_X)
    for name, value in (("grad_W", grads[1]), ("grad_w", grads[2])):
        step = steps[name]
        primal, gradient = (data["nodes"][i] for i in step["nodes"])
        assert (primal["name"], gradient["name"]) == (name[5:], name)  # on W, and on the node grad_W
        assert step["lines"] == gradient["lines"] and step["lines"]  # the code's line for grad_W
        assert step["value"] == np.array2string(value, precision=4, suppress_small=True)
    assert [data["nodes"][i]["name"] for i in steps["grad_h"]["nodes"]] == ["h", "grad_h"]


def test_a_vector_output_has_a_forward_sweep_only_and_no_feed_no_sweep(tmp_path):
    x, W, w, h, loss = _network()
    page = open(sg.explore(h, tmp_path / "p.html", feed={x: FEED_X})).read()
    (forward,) = _data(page)["sweeps"]
    assert forward["steps"][-1]["value"] == np.array2string(np.tanh(FEED_X @ W.op.value), precision=4,
                                                            suppress_small=True)
    page = open(sg.explore(h, tmp_path / "q.html")).read()
    assert _data(page)["sweeps"] == [] and "pass feed=" in page and 'id="next"' not in page


def test_user_text_is_escaped(tmp_path):
    x = sg.placeholder("x</script><b>", (2,))
    y = sg.exp(x).named('y"<img src=http://e/>')
    page = open(sg.explore(y, tmp_path / "p.html", feed={x: np.zeros(2)}, title="<i>t</i>")).read()
    assert "</script><b>" not in page and "<img" not in page and "<i>t</i>" not in page
    assert "&lt;i&gt;t&lt;/i&gt;" in page
    assert _data(page)["nodes"]  # the inline JSON still parses


def test_a_feed_naming_no_placeholder_is_an_error(tmp_path):
    x, W, w, h, loss = _network()
    with pytest.raises(KeyError, match="'z'"):
        sg.explore(loss, tmp_path / "p.html", feed={"z": FEED_X})


# -- in a real browser -------------------------------------------------------------------------

class Chromium:
    """Headless Chromium driven over the DevTools protocol (a websocket, via websocket-client)."""

    def __init__(self, url: str, profile):
        import websocket

        port = _free_port()
        self.process = subprocess.Popen(
            [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "--window-size=1400,900", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1))
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.1)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
        self.serial = 0

    def send(self, method: str, **params):
        self.serial += 1
        self.ws.send(json.dumps({"id": self.serial, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.serial:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply["result"]

    def eval(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def click(self, selector: str):
        """A real mouse click (press and release) at the middle of the element."""
        box = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                        "e.scrollIntoView({block: 'center', inline: 'center'});"
                        "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self):
        if getattr(self, "ws", None):
            self.ws.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path):
    if shutil.which("chromium") is None:
        reason = "chromium not found (apt-get install -y chromium; .ci/run installs it)"
        print(f"\nbrowser test skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    pytest.importorskip("websocket", reason="websocket-client not installed (pip install -e '.[test]')")
    opened = []

    def open_page(path):
        opened.append(Chromium(f"file://{path}", tmp_path / "profile"))
        chrome = opened[-1]
        deadline = time.monotonic() + 10
        while chrome.eval("document.readyState") != "complete" or not chrome.eval("typeof DATA === 'object'"):
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.05)
        return chrome

    yield open_page
    for chrome in opened:
        chrome.close()


def test_in_chromium_a_click_on_a_node_highlights_its_lines_and_a_step_shows_a_value(tmp_path, browser):
    x, W, w, h, loss = _network()
    path = sg.explore(loss, tmp_path / "page.html", feed={x: FEED_X})
    data = _data(open(path).read())
    index = {n["name"]: i for i, n in enumerate(data["nodes"])}
    chrome = browser(path)
    assert chrome.eval("document.querySelectorAll('.line.hl').length") == 0

    chrome.click(f"#node-{index['h']} rect")  # a node: its line lights up
    assert chrome.eval("[...document.querySelectorAll('.line.hl')].map(e => +e.dataset.line)") == \
        data["nodes"][index["h"]]["lines"]
    assert chrome.eval("document.querySelector('.node.selected').id") == f"node-{index['h']}"

    chrome.click(f"#line-{data['nodes'][index['loss']]['lines'][0]}")  # a line: the nodes it computes
    assert chrome.eval("document.querySelector('.node.selected').id") == f"node-{index['loss']}"

    steps = data["sweeps"][0]["steps"]
    for k in range(len(steps)):  # the forward sweep, step by step, to the value of h
        chrome.click("#next")
        if steps[k]["nodes"] == [index["h"]]:
            break
    assert chrome.eval("document.querySelector('.node.selected').id") == f"node-{index['h']}"
    assert chrome.eval("document.getElementById('value').textContent") == steps[k]["value"]
    assert chrome.eval("document.getElementById('status').textContent").startswith(f"forward {k + 1}/")
    assert chrome.eval("[...document.querySelectorAll('.line.hl')].map(e => +e.dataset.line)") == \
        data["nodes"][index["h"]]["lines"]

    chrome.eval("const s = document.getElementById('sweep'); s.value = '1'; s.dispatchEvent(new Event('change'))")
    chrome.click("#next")  # the reverse sweep: its first step, then its second
    step = data["sweeps"][1]["steps"][1]
    assert chrome.eval("document.getElementById('status').textContent").startswith("reverse 2/")
    assert chrome.eval("document.getElementById('value').textContent") == step["value"]
    assert chrome.eval("document.querySelector('.node.selected').id") == f"node-{step['nodes'][0]}"
    assert chrome.eval("document.body.innerText").count("Click a node") == 0


def test_the_command_line_writes_the_page_of_a_scripts_outputs(tmp_path):
    script = tmp_path / "net.py"
    script.write_text(
        "import numpy as np\nimport symgraph as sg\n"
        "x = sg.placeholder('x', (3,))\n"
        "def outputs():\n    return sg.sum(sg.exp(x)).named('total')\n"
        "feed = {'x': np.ones(3)}\n"
        "if __name__ == '__main__':\n    raise SystemExit('the main block must not run')\n")
    out = tmp_path / "page.html"
    proc = subprocess.run([sys.executable, "-m", "symgraph", "explore", str(script), "-o", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    data = _data(out.read_text())
    assert {n["name"] for n in data["nodes"]} >= {"x", "total"} and data["sweeps"][0]["steps"]
    bad = subprocess.run([sys.executable, "-m", "symgraph", "explore", str(script), "--outputs", "nothing"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert bad.returncode != 0 and "defines no 'nothing'" in bad.stderr


def test_the_xor_example_explores_its_loss_and_gradients(tmp_path):
    from symgraph.__main__ import main

    main(["explore", str(ROOT / "examples" / "explore_xor.py"), "-o", str(tmp_path / "xor.html")])
    data = _data((tmp_path / "xor.html").read_text())
    names = {n["name"] for n in data["nodes"]}
    assert {"hidden", "loss", "grad_W", "grad_c", "grad_w", "grad_b"} <= names
    (loss_step,) = [s for s in data["sweeps"][0]["steps"] if s["nodes"] and data["nodes"][s["nodes"][0]]["name"] == "loss"]
    assert float(loss_step["value"]) == 0.0625  # the book's weights, but b a quarter off
