"""Watching the engine: Graphviz export, backward trace, anomaly mode."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor, dot
from tinygrad_edu.models.text_color import COLORS, LABELS, build_mlp, error


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
