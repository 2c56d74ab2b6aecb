"""Watching the engine: Graphviz export, backward trace, anomaly mode."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from xml.etree import ElementTree

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.sequence_graphs import SEQUENCE_LOSSES, delivered_totals, traced
from tinygrad_edu import Tensor
from tinygrad_edu.models.text_color import COLORS, LABELS, build_mlp, error
from tinygrad_edu.observers import dot


def network_loss():
    model = build_mlp(rng=0)
    return model, error(model(Tensor(COLORS)), LABELS)


# ----------------------------------------------------------------------------- DOT
def test_to_dot_shows_ops_shapes_names_and_grads():
    model, loss = network_loss()
    loss.backward(retain_graph=True)
    text = loss.to_dot({id(p): n for n, p in model.named_parameters()})
    assert text.startswith("digraph computation {") and text.rstrip().endswith("}")
    for fragment in ("linear", "sigmoid", "sum", "(10, 5)", "0.weight", "4.bias", "|grad| = "):
        assert fragment in text
    assert text.count('label="linear"') == 3


def test_render_without_graphviz_writes_dot_and_a_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    path, hint = dot.render("digraph computation { a -> b; }", tmp_path / "g.png")
    assert path == tmp_path / "g.dot" and path.read_text().startswith("digraph")
    assert "Graphviz" in hint and "dot -Tpng" in hint


@pytest.mark.skipif(dot.shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_with_graphviz_writes_an_image(tmp_path):
    _, loss = network_loss()
    path, hint = dot.render(loss.to_dot(), tmp_path / "g.svg")
    assert hint is None and path.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("suffix", [".x11", ".xlib", ".bogus", ".svg;", ".json"])
def test_render_refuses_other_formats_before_running_graphviz(tmp_path, suffix, monkeypatch):
    """The suffix was handed to Graphviz as its -T format: '.x11' opened a window, unknown ones
    ended in a raw CalledProcessError."""
    monkeypatch.setattr(dot.subprocess, "run", None)  # never reached
    with pytest.raises(ValueError, match=r"give a path ending in \.png, \.svg, \.pdf"):
        dot.render("digraph g { a -> b; }", tmp_path / f"g{suffix}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(dot.shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_reports_what_graphviz_rejects(tmp_path):
    with pytest.raises(RuntimeError, match=r"Graphviz could not draw .*syntax error"):
        dot.render("digraph g { a -> ", tmp_path / "g.svg")


# ----------------------------------------------------------------------------- DOT escaping
_DOT_TOKEN = re.compile(r'\s*(?:(->|[{}\[\];=,])|("(?:[^"\\]|\\.)*")|([A-Za-z0-9_.#]+))', re.S)
_UNESCAPE = re.compile(r"\\(.)|&amp;", re.S)


def _dot_unquote(token: str) -> str:
    """What Graphviz shows for a quoted string made by ``quote`` (its escapes undone)."""
    table = {"n": "\n", '"': '"', "\\": "\\"}
    return _UNESCAPE.sub(lambda m: "&" if m.group(1) is None else table[m.group(1)], token[1:-1])


def _parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict]]]:
    """The nodes (name -> attributes) and edges of the DOT subset the library writes; anything
    else (an unbalanced quote, a stray token) fails the test."""
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _DOT_TOKEN.match(text, position)
        assert match and match.end() > position, f"unparsable DOT at {text[position:][:40]!r}"
        tokens.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    assert tokens[0] == "digraph" and tokens[2] == "{" and tokens[-1] == "}"
    nodes, edges, statement = {}, [], []
    for token in tokens[3:-1]:
        if token != ";":
            statement.append(token)
            continue
        statement, done = [], statement
        if done[0] in ("node", "rankdir"):
            continue
        attributes = {}
        if "[" in done:
            start = done.index("[")
            assert done[-1] == "]"
            body = [t for t in done[start + 1 : -1] if t != ","]
            assert len(body) % 3 == 0 and all(body[i + 1] == "=" for i in range(0, len(body), 3))
            attributes = {
                body[i]: _dot_unquote(body[i + 2]) if body[i + 2][0] == '"' else body[i + 2]
                for i in range(0, len(body), 3)
            }
            done = done[:start]
        if len(done) == 3 and done[1] == "->":
            edges.append((done[0], done[2], attributes))
        else:
            assert len(done) == 1, f"unexpected statement {done}"
            nodes[done[0]] = attributes
    return nodes, edges


HOSTILE = [
    'w"]; evil [URL="javascript:alert(1)", image="/etc/passwd"]; x [label="',
    'a\\"; b [image="/etc/passwd',
    "line\nbreak\\N\\G\\l&lt;<b>bold</b>&amp;",
    "\x00\x07\r\ud800 ünï \u202e",
]
_NAMES = st.one_of(st.sampled_from(HOSTILE), st.text(), st.text(alphabet='"\\\n<>[];=&{}'))


def _visible_text(text: str) -> str:
    return "".join(
        c.encode("unicode_escape").decode()
        if unicodedata.category(c) in ("Cc", "Cs") and c != "\n"
        else c
        for c in text
    )


@given(name=_NAMES, op=_NAMES)
def test_no_name_can_change_the_structure_of_the_dot_graph(name, op):
    """Every string reaching DOT is quoted: the graph keeps its nodes, edges and attributes, and
    each label reads back as the text it was made from."""
    x = Tensor(np.ones(2), requires_grad=True)
    loss = (x * 2).sum()
    loss._node.name = op
    nodes, edges = _parse_dot(loss.to_dot({id(x): name}))
    assert len(nodes) == 6 and len(edges) == 5  # tensors x, 2, x*2, loss; ops mul, sum
    ops = {k: v for k, v in nodes.items() if k.startswith("op")}
    tensors = {k: v for k, v in nodes.items() if k.startswith("t")}
    assert all(set(v) == {"shape", "label"} for v in ops.values())
    assert all(set(v) == {"shape", "style", "fillcolor", "label"} for v in tensors.values())
    assert sorted(v["label"] for v in ops.values()) == sorted(["mul", _visible_text(op)])
    assert tensors[f"t{id(x)}"]["label"] == (_visible_text(name) + "\n" if name else "") + "(2,)"

    with tg.trace() as recorded:
        loss.backward()
    recorded.steps[:] = [replace(s, op=op) for s in recorded.steps]
    nodes, edges = _parse_dot(recorded.to_dot())
    assert len(nodes) == 2 and len(edges) == 1 and all(set(v) == {"label"} for v in nodes.values())
    assert nodes["s0"]["label"].startswith(f"0: {_visible_text(op)} -> ()\n|grad out| = ")


@given(op=_NAMES)
def test_the_trace_table_has_one_row_per_step_whatever_the_op_names(op):
    x = Tensor(np.ones(2), requires_grad=True)
    with tg.trace() as recorded:
        (x * 2).sum().backward()
    recorded.steps[:] = [replace(s, op=op) for s in recorded.steps]
    rows = str(recorded).splitlines()
    assert len(rows) == len(recorded.steps) + 2
    assert all(row.split()[0] == str(i) for i, row in enumerate(rows[2:]))


@pytest.mark.skipif(dot.shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("name", HOSTILE)
def test_graphviz_draws_hostile_names_literally_and_nothing_else(name, tmp_path):
    x = Tensor(np.ones(2), requires_grad=True)
    loss = (x * 2).sum()
    loss._node.name = name
    path, _ = dot.render(loss.to_dot({id(x): name}), tmp_path / "g.svg")
    svg = ElementTree.parse(path).getroot()
    tags = {element.tag.split("}")[-1] for element in svg.iter()}
    assert tags <= {"svg", "g", "title", "polygon", "ellipse", "path", "text"}, tags  # no a, image
    assert not any("href" in key for element in svg.iter() for key in element.attrib)
    shown = [" ".join(t.text.split()) for t in svg.iter() if t.tag.endswith("text") and t.text]
    for line in _visible_text(name).split("\n"):
        assert " ".join(line.split()) in shown, (line, shown)


# ----------------------------------------------------------------------------- trace
def test_trace_records_each_vjp_in_order():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tg.trace() as t:
        (x.exp() * 3).sum().backward()
    assert [s.op for s in t.steps] == ["sum", "mul", "exp"]
    first = t.steps[0]
    assert first.input_shapes == ((2,),) and first.output_shape == ()
    assert first.grad_output_norm == pytest.approx(1.0)
    assert t.steps[-1].grad_input_norms[0] == pytest.approx(np.linalg.norm(3 * np.exp([1.0, 2.0])))


def test_trace_of_the_network_prints_a_table_and_a_graph():
    _, loss = network_loss()
    with tg.trace() as t:
        loss.backward()
    table = str(t)
    assert table.splitlines()[0].split() == [
        "#",
        "op",
        "input",
        "shapes",
        "output",
        "|grad",
        "out|",
        "|grad",
        "in|",
    ]
    assert [s.op for s in t.steps].count("linear") == 3 and len(t) == len(table.splitlines()) - 2
    graph = t.to_dot()
    assert graph.startswith("digraph backward") and "linear" in graph and "->" in graph


def test_nothing_is_recorded_outside_trace():
    x = Tensor(np.ones(2), requires_grad=True)
    with tg.trace() as t:
        pass
    (x * 2).sum().backward()
    assert len(t) == 0


# ----------------------------------------------------------------------------- anomaly
def test_anomaly_mode_names_the_first_bad_forward_op_and_its_line():
    x = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError) as caught:
        y = x.log()  # log(-1) = nan: the first bad op
        (y * 2).exp().sum()
    message = str(caught.value)
    assert "'log'" in message and "(2,)" in message
    first_line = (
        test_anomaly_mode_names_the_first_bad_forward_op_and_its_line.__code__.co_firstlineno
    )
    assert f"test_introspection.py:{first_line + 3} " in message  # the line of x.log()


def test_anomaly_mode_names_the_first_bad_backward_op():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()  # finite forward, infinite derivative at 0
        z = (y * 3).sum()
        with pytest.raises(tg.AnomalyError) as caught:
            z.backward()
    message = str(caught.value)
    assert message.startswith("backward produced NaN/Inf") and "'sqrt'" in message
    first_line = test_anomaly_mode_names_the_first_bad_backward_op.__code__.co_firstlineno
    assert f"test_introspection.py:{first_line + 3} " in message  # where sqrt was created


def test_without_anomaly_mode_nan_passes_silently():
    x = Tensor(np.array([-1.0]), requires_grad=True)
    assert np.isnan(x.log().item())


def test_anomaly_mode_checks_the_seed():
    x = Tensor(np.array([1.0]), requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="passed to backward"):
        (x * 2).backward(np.array([np.nan]))


# ----------------------------------------------------------------------------- sequence layers
# Backpropagation through time and through attention is the ordinary sweep, so the trace must see
# it whole: every op of the unrolled graph popped exactly once, and the gradient it totals at each
# parameter equal to the .grad the sweep leaves there (the graphs: tests/sequence_graphs.py).
@pytest.mark.parametrize("kind", SEQUENCE_LOSSES)
def test_trace_of_a_sequence_layer_pops_every_op_once_and_totals_the_grads(kind):
    build, counts = SEQUENCE_LOSSES[kind]
    trace, module, x = traced(build)
    assert len(trace.graphs) == 1
    graph = trace.graphs[0]
    ops = {key for key, record in graph.items() if record.op is not None}
    popped = [step.output_id for step in trace.steps]
    assert len(popped) == len(set(popped)) and set(popped) == ops
    assert [step.op for step in trace.steps] == [graph[key].op for key in popped]
    for op, count in counts.items():
        assert [step.op for step in trace.steps].count(op) == count, op
    totals = delivered_totals(trace)
    named = [("input", x), *module.named_parameters()]
    for name, tensor in named:
        total = totals[id(tensor)]
        assert total.shape == tensor.grad.shape, name
        assert total.norm == pytest.approx(np.linalg.norm(tensor.grad.data), rel=1e-12), name
        np.testing.assert_allclose(total.head, tensor.grad.data.reshape(-1)[:6], rtol=1e-12)
    table = str(trace).splitlines()
    assert len(table) == len(trace.steps) + 2
    reached = set(re.findall(r"-> s(\d+)", trace.to_dot()))
    assert reached == {str(step.index) for step in trace.steps[1:]}  # the sweep is connected
