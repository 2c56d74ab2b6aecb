"""Draw the worked example's network as the engine sees it: the computation graph of its error.

Boxes are tensors (parameters are named, shaded ones require grad; after backward each shows the
norm of its gradient), ellipses are ops. Writes text_color_graph.png with Graphviz's ``dot`` when
it is installed, otherwise text_color_graph.dot plus the command that renders it. Run:

    python examples/text_color_graph.py
"""

from __future__ import annotations

from tinygrad_edu import Tensor
from tinygrad_edu.models.text_color import COLORS, LABELS, build_mlp, error
from tinygrad_edu.observers.dot import render


def main() -> None:
    model = build_mlp(rng=0)
    x = Tensor(COLORS)
    loss = error(model(x), LABELS)
    names = {id(p): name for name, p in model.named_parameters()}
    names[id(x)] = "colours"
    names[id(loss)] = "E = 1/2 sum (o - y)^2"
    loss.backward(retain_graph=True)  # keep the graph to draw it with its gradients
    path, hint = render(loss.to_dot(names), "text_color_graph.png")
    print(f"graph written to {path}")
    if hint:
        print(hint)


if __name__ == "__main__":
    main()
