"""The backward explorer: what the trace records, the page it writes, and (in headless Chromium)
that stepping through the page replays exactly the engine's sweep."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.sequence_graphs import SEQUENCE_LOSSES, traced
from tinygrad_edu import Tensor
from tinygrad_edu.models.text_color import COLORS, LABELS, build_mlp, error
from tinygrad_edu.observers.explorer import payload, render
from tinygrad_edu.observers.records import HEAD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def text_color_trace():
    model = build_mlp(rng=0)
    loss = error(model(Tensor(COLORS)), LABELS)
    with tg.trace() as trace:
        loss.backward()
    return trace, {id(p): n for n, p in model.named_parameters()}


def shared_and_broadcast_trace():
    """``b`` (3,) is broadcast against ``a`` (2, 3) and ``h`` is used twice (accumulation)."""
    a = Tensor(np.arange(6.0).reshape(2, 3) / 5, requires_grad=True)
    b = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with tg.trace() as trace:
        h = (a + b).tanh()
        (h * h.sigmoid()).sum().backward()
    return trace, a, b


# ----------------------------------------------------------------------------- what is recorded
def test_the_trace_keeps_the_graph_and_gradient_summaries():
    trace, names = text_color_trace()
    assert len(trace.graphs) == 1 and all(step.sweep == 0 for step in trace.steps)
    graph = trace.graphs[0]
    assert {record.op for record in graph.values()} >= {"linear", "sigmoid", "sum", None}
    assert set(names) <= set(graph)  # every parameter is a leaf of the graph
    for step in trace.steps:
        assert step.grad_output.norm == pytest.approx(step.grad_output_norm)
        assert step.grad_output.shape == step.output_shape
        assert len(step.deliveries) == len(step.input_ids)


def test_broadcasting_undone_and_accumulation_are_recorded():
    trace, _, b = shared_and_broadcast_trace()
    add = next(s for s in trace.steps if s.op == "add")
    to_a, to_b = add.deliveries
    assert to_a.reduced is None and to_a.grad.shape == (2, 3)
    assert to_b.grad.shape == (2, 3) and to_b.reduced.shape == (3,)
    assert to_b.reduced.norm == pytest.approx(np.linalg.norm(b.grad.data))
    tanh = next(s for s in trace.steps if s.op == "tanh")
    received = [
        d for s in trace.steps for d in s.deliveries if d.input_id == tanh.output_id and d.grad
    ]
    assert [d.accumulated for d in received] == [False, True]  # from mul, then added: sigmoid
    assert received[-1].total.norm == pytest.approx(tanh.grad_output.norm)


def test_summaries_are_bounded_for_big_tensors():
    x = Tensor(np.ones(200_000), requires_grad=True)
    with tg.trace() as trace:
        (x * 2).sum().backward()
    record = trace.graphs[0][id(x)]
    assert len(record.value.head) == HEAD and record.value.norm == pytest.approx(np.sqrt(2e5))


def test_payload_lays_out_every_tensor_and_maps_steps_to_boxes():
    trace, names = text_color_trace()
    data = payload(trace, names=names)
    assert len(data["nodes"]) == len(trace.graphs[0]) and not data["collapsed"]
    labels = [n["label"] for n in data["nodes"]]
    assert "0.weight" in labels and "4.bias" in labels
    assert [s["op"] for s in data["steps"]] == [s.op for s in trace.steps]
    xs = {(n["x"], n["y"]) for n in data["nodes"]}
    assert len(xs) == len(data["nodes"])  # no two boxes on top of each other
    for start, end in data["edges"]:  # the forward computation flows left to right
        assert data["nodes"][start]["x"] < data["nodes"][end]["x"]


def test_big_graphs_collapse_into_layers():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    with tg.trace() as trace:
        for _ in range(30):
            y = y * 1.01
        y.sum().backward()
    data = payload(trace, max_nodes=20)
    assert data["collapsed"] and data["tensors"] == 62
    assert len(data["nodes"]) < data["tensors"] and len(data["steps"]) == 31
    assert data["nodes"][data["steps"][0]["node"]]["members"] >= 1


def test_to_html_is_self_contained_and_escapes_names(tmp_path):
    trace, names = text_color_trace()
    names[next(iter(names))] = "</script><b>x"
    path = trace.to_html(tmp_path / "page.html", names=names, title="a <b> title")
    html = path.read_text()
    assert html.count("</script>") == 2  # the data and the renderer, nothing injected
    assert "a &lt;b&gt; title" in html and "</script><b>x" not in html
    assert (
        "https://" not in html
        and re.findall(r"http://[^\s\"']+", html) == ["http://www.w3.org/2000/svg"] * 2
    )
    assert "<link" not in html and " src=" not in html


HOSTILE_NAMES = [
    "</script><script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<!-- <script>",
    '" onmouseover="alert(1)" x="',
    "${alert(1)}`\\u2028\u2028\u2029&amp;&lt;",
]


class _PageReader(HTMLParser):
    """The tags of a page, the text of its <title>, <h1> and its scripts."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self._tag = [], {"title": "", "h1": "", "script": []}, None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._tag = tag
        if tag == "script":
            self.text["script"].append("")

    def handle_endtag(self, tag):
        self._tag = None

    def handle_data(self, data):
        if self._tag == "script":
            self.text["script"][-1] += data
        elif self._tag in ("title", "h1"):
            self.text[self._tag] += data


def _hostile_trace(op: str):
    x = Tensor(np.ones(2), requires_grad=True)
    with tg.trace() as trace:
        (x * 2).sum().backward()
    trace.steps[:] = [replace(s, op=op) for s in trace.steps]
    return trace, x


@given(name=st.one_of(st.sampled_from(HOSTILE_NAMES), st.text()), op=st.text(), title=st.text())
def test_names_titles_and_op_names_stay_data_in_the_page(name, op, title):
    """Whatever the strings, the page has the template's elements only, its title reads back
    as given, and the script's data decodes to the very names."""
    trace, x = _hostile_trace(op)
    page = render(payload(trace, names={id(x): name}, title=title or None))
    reader = _PageReader()
    reader.feed(page)
    plain = _PageReader()
    plain.feed(render(payload(trace, title="t")))
    assert reader.tags == plain.tags
    assert reader.text["title"] == f"{title or 'backward explorer'} · tinygrad_edu"
    assert reader.text["h1"] == (title or "backward explorer")
    assert len(reader.text["script"]) == 2 and reader.text["script"][0].startswith("const DATA = ")
    data = json.loads(reader.text["script"][0][len("const DATA = ") : -1])
    assert name in [node["label"] for node in data["nodes"]]
    assert [step["op"] for step in data["steps"]] == [op] * len(trace.steps)


#: every code point, lone surrogates too (a file name that is not UTF-8 decodes to them)
ANY_TEXT = st.text(st.characters(exclude_categories=()))


@given(name=ANY_TEXT, op=ANY_TEXT, title=ANY_TEXT)
@example(name="\udcff", op="\ud800", title="caf\udce9.py")
def test_any_string_makes_a_page_that_can_be_written(name, op, title):
    """Whatever the strings (lone surrogates included), the page is valid UTF-8 with the
    template's elements; a surrogate in the title is shown as its escape."""
    trace, x = _hostile_trace(op)
    page = render(payload(trace, names={id(x): name}, title=title or None))
    reader = _PageReader()
    reader.feed(page.encode("utf-8").decode("utf-8"))
    shown = (title or "backward explorer").encode("utf-8", "backslashreplace").decode()
    assert reader.text["h1"] == shown


def test_explore_a_script_whose_file_name_is_not_utf8(tmp_path, capsys):
    script = tmp_path / os.fsdecode(b"caf\xe9.py")
    script.write_text(SCRIPT_HEAD + BACKWARD)
    assert _explore([str(script), "--out", str(tmp_path / "page.html")]) == 0
    assert "backward pass of caf\\udce9.py" in (tmp_path / "page.html").read_text()


def test_to_html_names_a_missing_sweep(tmp_path):
    with tg.trace() as trace:
        pass
    with pytest.raises(ValueError, match="no backward pass"):
        trace.to_html(tmp_path / "x.html")
    trace, _ = text_color_trace()
    with pytest.raises(ValueError, match="sweep 3 does not exist"):
        trace.to_html(tmp_path / "x.html", sweep=3)


# ----------------------------------------------------------------------------- in a real browser
class _DomReader(HTMLParser):
    """Collects the attributes of the log entries, the current-step panel and input rows, the
    text of the header's counter and of the panel's first paragraph, and every tag."""

    def __init__(self):
        super().__init__()
        self.log, self.current, self.inputs, self.log_start = [], None, [], None
        self.counter, self.headline, self.tags, self.attributes = "", "", [], []
        self._into: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes.extend(attrs.items())
        if tag == "li" and "data-op" in attrs:
            self.log.append(attrs)
        elif attrs.get("id") == "log":
            self.log_start = attrs.get("start")
        elif attrs.get("id") == "counter":
            self._into = "counter"
        elif attrs.get("id") == "current":
            self.current = attrs
            self._into = "current"
        elif tag == "p" and self._into == "current":
            self._into = "headline"
        elif "input-grad" in (attrs.get("class") or ""):
            self.inputs.append(attrs)

    def handle_endtag(self, tag):
        if (tag, self._into) in (("span", "counter"), ("p", "headline")):
            self._into = None

    def handle_data(self, data):
        if self._into == "counter":
            self.counter += data
        elif self._into == "headline":
            self.headline += data


def rendered(path: Path, step: int, profile: Path) -> _DomReader:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--dump-dom",
        f"{path.resolve().as_uri()}#step={step}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    reader = _DomReader()
    reader.feed(result.stdout)
    return reader


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def _assert_page_replays(trace, path, tmp_path, names=None):
    data = payload(trace, names=names)
    trace.to_html(path, names=names)
    count = len(trace.steps)
    for step in (count, max(count // 2, 1)):
        dom = rendered(path, step, tmp_path / "profile")
        assert [entry["data-op"] for entry in dom.log] == [s.op for s in trace.steps[:step]]
        assert [int(entry["data-node"]) for entry in dom.log] == [
            s["node"] for s in data["steps"][:step]
        ]
        assert [float(entry["data-g-norm"]) for entry in dom.log] == [
            s.grad_output.norm for s in trace.steps[:step]
        ]
        last = trace.steps[step - 1]
        assert int(dom.current["data-step"]) == step and dom.current["data-op"] == last.op
        # the header, the panel and the log's numbering agree (the panel said one less)
        assert dom.counter == f"step {step} of {count}"
        assert dom.headline.startswith(f"step {step} of {count}: pop ")
        assert int(dom.log_start) + len(dom.log) - 1 == step
        assert [float(x) for x in re.findall(r"[-\d.e]+", dom.current["data-g-head"])] == list(
            last.grad_output.head
        )
        expected = [d.grad.norm for d in last.deliveries if d.grad is not None]
        assert [float(row["data-norm"]) for row in dom.inputs] == expected


@needs_chromium
def test_the_text_color_page_replays_the_engine_sweep_in_chromium(tmp_path):
    trace, names = text_color_trace()
    _assert_page_replays(trace, tmp_path / "text_color.html", tmp_path, names)


@needs_chromium
def test_a_page_with_sharing_and_broadcasting_replays_in_chromium(tmp_path):
    trace, _, _ = shared_and_broadcast_trace()
    _assert_page_replays(trace, tmp_path / "shared.html", tmp_path)


@needs_chromium
def test_hostile_names_are_shown_as_text_in_chromium(tmp_path):
    trace, x = _hostile_trace(HOSTILE_NAMES[1])
    path = trace.to_html(tmp_path / "hostile.html", names={id(x): HOSTILE_NAMES[0]})
    dom = rendered(path, len(trace.steps), tmp_path / "profile")
    assert "img" not in dom.tags and dom.tags.count("script") == 2
    assert not any(key.startswith("on") for key, _ in dom.attributes)
    assert [entry["data-op"] for entry in dom.log] == [HOSTILE_NAMES[1]] * len(trace.steps)
    assert HOSTILE_NAMES[1] in dom.headline


@needs_chromium
def test_a_collapsed_graph_of_thousands_of_tensors_renders_in_chromium(tmp_path):
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    with tg.trace() as trace:
        for i in range(1500):
            y = y * 1.0001 + (0.001 if i % 2 else 0.0)
        y.sum().backward()
    path = trace.to_html(tmp_path / "big.html")
    assert payload(trace)["collapsed"]
    dom = rendered(path, len(trace.steps), tmp_path / "profile")
    assert [entry["data-op"] for entry in dom.log] == [s.op for s in trace.steps]


# ----------------------------------------------------------------------------- command line
def _explore(argv):
    from tinygrad_edu.cli import build_parser

    args = build_parser().parse_args(["explore", *argv])
    return args.run(args)


def test_explore_the_text_color_example(tmp_path, capsys):
    assert _explore(["text-color", "--out", str(tmp_path / "tc.html")]) == 0
    assert "10 VJP steps over 19 tensors" in capsys.readouterr().out
    assert "0.weight" in (tmp_path / "tc.html").read_text()


def test_explore_a_script_and_pick_a_sweep(tmp_path, capsys):
    script = tmp_path / "two_passes.py"
    script.write_text(
        "import numpy as np\nfrom tinygrad_edu import Tensor\n"
        "x = Tensor(np.ones(3), requires_grad=True)\n"
        "(x * x).sum().backward()\n(x.exp() * 2).sum().backward()\n"
    )
    assert _explore([str(script), "--out", str(tmp_path / "s.html"), "--sweep", "1"]) == 0
    assert "3 VJP steps" in capsys.readouterr().out
    assert "(sweep 1 of 2)" in (tmp_path / "s.html").read_text()


def test_explore_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor an example"):
        _explore([str(tmp_path / "missing.py")])
    quiet = tmp_path / "quiet.py"
    quiet.write_text("x = 1\n")
    with pytest.raises(ValueError, match="ran no backward pass"):
        _explore([str(quiet)])


SCRIPT_HEAD = "import numpy as np\nfrom tinygrad_edu import Tensor\n"
BACKWARD = "x = Tensor(np.ones(2), requires_grad=True)\n(x * 2).sum().backward()\n"


@pytest.mark.parametrize(
    "body, line, error",
    [
        ("def helper():\n    return undefined_name\n\n" + BACKWARD + "helper()\n", 8, "NameError"),
        (BACKWARD + "raise ValueError('my own message')\n", 5, "ValueError: my own message"),
        (BACKWARD + "x * Tensor(np.ones(3))\n", 5, "ShapeError: mul: input shapes (2,), (3,)"),
        ("import tinygrad_edu as tg\ntg.load(123.5)\n", 4, "TypeError"),
    ],
)
def test_a_failing_script_shows_its_own_traceback_and_nothing_of_ours(
    body, line, error, tmp_path, capsys
):
    """Its error used to be collapsed to one line without file:line (and a NameError showed the
    command line's internals)."""
    from tinygrad_edu.cli import main

    script = tmp_path / "mine.py"
    script.write_text(SCRIPT_HEAD + body)
    assert main(["explore", str(script), "--out", str(tmp_path / "page.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-edu: error: explore: {script} raised {error.split(':')[0]}")
    assert f'File "{script}", line {line}, in <module>' in err and error in err
    assert "tinygrad_edu" not in err.replace("tinygrad_edu.axes.ShapeError", "")
    assert "runpy" not in err and not (tmp_path / "page.html").exists()


def test_a_script_with_a_syntax_error_or_an_exit_status(tmp_path, capsys):
    from tinygrad_edu.cli import main

    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\ndef f(:\n")
    assert main(["explore", str(broken)]) == 1
    err = capsys.readouterr().err
    assert f'File "{broken}", line 2' in err and "SyntaxError" in err and "runpy" not in err
    leaving = tmp_path / "leaving.py"
    leaving.write_text("import sys\nsys.exit(3)\n")
    assert main(["explore", str(leaving)]) == 3
    assert (
        capsys.readouterr().err == f"tinygrad-edu: error: explore: {leaving} exited with status 3\n"
    )
    leaving.write_text("import sys\nsys.exit('gave up')\n")
    assert main(["explore", str(leaving)]) == 1
    assert capsys.readouterr().err == f"tinygrad-edu: error: explore: {leaving} exited: gave up\n"


# ----------------------------------------------------------------------------- sequence layers
# An LSTM over three steps, a bidirectional GRU, causal multi-head attention and an encoder layer
# (tests/sequence_graphs.py): the page draws every tensor of the unrolled graph, maps each step to
# its own box, and shows the modules' parameter names as data, whatever they contain.
@pytest.mark.parametrize("kind", SEQUENCE_LOSSES)
def test_a_sequence_layer_page_draws_every_tensor_and_keeps_names_as_data(kind, tmp_path):
    build, _ = SEQUENCE_LOSSES[kind]
    trace, module, x = traced(build)
    names = {id(p): f"{HOSTILE_NAMES[0]}{n}" for n, p in module.named_parameters()}
    names[id(x)] = HOSTILE_NAMES[1]
    data = payload(trace, names=names)
    assert not data["collapsed"] and len(data["nodes"]) == len(trace.graphs[0])
    assert [step["op"] for step in data["steps"]] == [step.op for step in trace.steps]
    boxes = [step["node"] for step in data["steps"]]
    assert len(set(boxes)) == len(boxes)  # one box per popped tensor
    assert {data["nodes"][box]["label"] for box in boxes}.isdisjoint(names.values())
    page = trace.to_html(tmp_path / f"{kind}.html", names=names, title=f"{kind} <sweep>")
    reader = _PageReader()
    reader.feed(page.read_text())
    plain = _PageReader()
    plain.feed(render(payload(trace, title="t")))
    assert reader.tags == plain.tags and reader.text["h1"] == f"{kind} <sweep>"
    shown = json.loads(reader.text["script"][0][len("const DATA = ") : -1])
    assert set(names.values()) <= {node["label"] for node in shown["nodes"]}


@needs_chromium
@pytest.mark.parametrize("kind", ["lstm", "encoder"])
def test_a_sequence_layer_page_replays_the_engine_sweep_in_chromium(kind, tmp_path):
    trace, module, _ = traced(SEQUENCE_LOSSES[kind][0])
    names = {id(p): n for n, p in module.named_parameters()}
    _assert_page_replays(trace, tmp_path / f"{kind}.html", tmp_path, names)
