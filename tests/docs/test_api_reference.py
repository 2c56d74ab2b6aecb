"""The API reference in ``docs/api.md`` is generated from the code and cannot drift from it.

* the committed page is exactly what ``python -m tinygrad_edu.apidoc`` prints;
* every name of the public API contract has an entry (the contract's names are copied here,
  because users have the project, not the contract);
* every documented function, class, method and property says what it does in its docstring,
  except the names in :data:`UNDOCUMENTED`, which shrinks as docstrings are written.
"""

from __future__ import annotations

import re
from pathlib import Path

from tinygrad_edu import apidoc

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "api.md"

#: every name the public API contract lists, relative to ``tinygrad_edu``
CONTRACT = (
    # Tensor and autodiff
    "Tensor",
    "Tensor.data",
    "Tensor.numpy",
    "Tensor.__array__",
    "Tensor.shape",
    "Tensor.ndim",
    "Tensor.dtype",
    "Tensor.size",
    "Tensor.__len__",
    "Tensor.item",
    "Tensor.requires_grad",
    "Tensor.grad",
    "Tensor.backward",
    "Tensor.detach",
    "Tensor.zero_grad",
    "Tensor.register_hook",
    "Tensor.to_dot",
    "Tensor.__add__",
    "Tensor.__sub__",
    "Tensor.__mul__",
    "Tensor.__truediv__",
    "Tensor.__pow__",
    "Tensor.__matmul__",
    "Tensor.__neg__",
    "Tensor.__getitem__",
    "Tensor.abs",
    "Tensor.exp",
    "Tensor.log",
    "Tensor.sqrt",
    "Tensor.sigmoid",
    "Tensor.tanh",
    "Tensor.relu",
    "Tensor.sum",
    "Tensor.mean",
    "Tensor.max",
    "Tensor.reshape",
    "Tensor.transpose",
    "Tensor.T",
    "Tensor.flatten",
    "Tensor.stack",
    "Tensor.concatenate",
    "Tensor.clip",
    "Tensor.softmax",
    "Tensor.log_softmax",
    "Tensor.zeros",
    "Tensor.ones",
    "Tensor.randn",
    "no_grad",
    "grad",
    "gradcheck",
    "GradcheckError",
    "trace",
    "tracing.Trace.to_dot",
    "tracing.Trace.to_html",
    "detect_anomaly",
    "save",
    "load",
    "compile",
    # forward mode and functional transforms
    "jvp",
    "vjp",
    "jacrev",
    "jacfwd",
    "hessian",
    "hvp",
    # layers
    "nn",
    "nn.Module",
    "nn.Module.forward",
    "nn.Module.__call__",
    "nn.Module.parameters",
    "nn.Module.named_parameters",
    "nn.Module.state_dict",
    "nn.Module.load_state_dict",
    "nn.Module.zero_grad",
    "nn.Linear",
    "nn.Conv2d",
    "nn.MaxPool2d",
    "nn.Sigmoid",
    "nn.ReLU",
    "nn.Tanh",
    "nn.Flatten",
    "nn.Sequential",
    "nn.MSELoss",
    "nn.BCELoss",
    "nn.CrossEntropyLoss",
    "nn.functional",
    "nn.functional.linear",
    "nn.functional.conv2d",
    "nn.functional.max_pool2d",
    "nn.functional.mse_loss",
    "nn.functional.binary_cross_entropy",
    "nn.functional.cross_entropy",
    "nn.utils.clip_grad_norm_",
    # optimizers, schedulers, data
    "optim",
    "optim.SGD",
    "optim.Adam",
    "optim.Optimizer.step",
    "optim.Optimizer.zero_grad",
    "optim.lr_scheduler",
    "data.DataLoader",
    # the document's network
    "models.text_color.COLORS",
    "models.text_color.LABELS",
    "models.text_color.build_mlp",
    "models.text_color.to_augmented",
    "models.text_color.from_augmented",
    "models.text_color.handderived.deltas",
    "models.text_color.handderived.weight_gradients",
    # VGG16
    "models.vgg.vgg16",
    "models.vgg.VGG16",
    "models.vgg.VGG16.__call__",
    "models.vgg.VGG16.forward",
    "models.vgg.VGG16.layer_names",
    "models.vgg.VGG16.preprocess",
    "models.vgg.VGG16.deprocess",
    # feature visualisation
    "vis.visualize_filters",
    "vis.stitch",
    "vis.save_png",
)

#: public names without a docstring of their own (or of the method they override), relative to
#: ``tinygrad_edu``. Write the docstring, regenerate ``docs/api.md``, and delete the name here.
UNDOCUMENTED = frozenset(
    {
        "Tensor.data",
        "Tensor.grad",
        "Tensor.requires_grad",
        "Tensor.lt",
        "Tensor.le",
        "Tensor.gt",
        "Tensor.ge",
        "Tensor.eq",
        "Tensor.ne",
        "Tensor.isnan",
        "Tensor.isinf",
        "Tensor.isfinite",
        "Tensor.logical_and",
        "Tensor.logical_or",
        "Tensor.logical_xor",
        "Tensor.logical_not",
        "Tensor.abs",
        "Tensor.exp",
        "Tensor.log",
        "Tensor.sqrt",
        "Tensor.sigmoid",
        "Tensor.tanh",
        "Tensor.relu",
        "Tensor.sin",
        "Tensor.cos",
        "Tensor.tan",
        "Tensor.asin",
        "Tensor.acos",
        "Tensor.atan",
        "Tensor.sinh",
        "Tensor.cosh",
        "Tensor.asinh",
        "Tensor.acosh",
        "Tensor.atanh",
        "Tensor.arcsin",
        "Tensor.arccos",
        "Tensor.arctan",
        "Tensor.arcsinh",
        "Tensor.arccosh",
        "Tensor.arctanh",
        "Tensor.log2",
        "Tensor.log10",
        "Tensor.log1p",
        "Tensor.exp2",
        "Tensor.expm1",
        "Tensor.rsqrt",
        "Tensor.erf",
        "Tensor.reciprocal",
        "Tensor.floor",
        "Tensor.ceil",
        "Tensor.trunc",
        "Tensor.sum",
        "Tensor.softmax",
        "Tensor.log_softmax",
        "Tensor.broadcast_to",
        "Tensor.reshape",
        "Tensor.view",
        "Tensor.T",
        "Tensor.swapaxes",
        "nn.IncompatibleKeys.missing_keys",
        "nn.IncompatibleKeys.unexpected_keys",
        "nn.Module.named_children",
        "nn.Module.children",
        "nn.Module.modules",
        "nn.Module.parameters",
        "nn.Module.buffers",
        "nn.functional.relu",
        "nn.functional.sigmoid",
        "nn.functional.tanh",
        "optim.lr_scheduler.LRScheduler.get_lr",
        "optim.lr_scheduler.OneCycleLR.get_lr",
        "models.vgg.VGG16.conv_layer_names",
    }
)

HEADING = re.compile(r"^(#{2,4}) `(tinygrad_edu[\w.]*)`$")
SUBMODULE = re.compile(r"^- \[`(tinygrad_edu[\w.]*)`\]")
PROTOCOL = re.compile(r"^- `[^`]+` \(`(__\w+__)`\)")


def documented_names(page: str) -> set[str]:
    """Dotted names the page has an entry for: headings, submodule and operator bullets."""
    names: set[str] = set()
    owner = ""  # the object whose operators the bullets below a level-3 heading list
    for line in page.splitlines():
        if heading := HEADING.match(line):
            names.add(heading.group(2))
            if len(heading.group(1)) <= 3:
                owner = heading.group(2)
        elif submodule := SUBMODULE.match(line):
            names.add(submodule.group(1))
        elif protocol := PROTOCOL.match(line):
            names.add(f"{owner}.{protocol.group(1)}")
    return names


def test_page_is_what_the_generator_prints():
    assert PAGE.read_text() == apidoc.render(), (
        f"docs/api.md is out of date with the code; regenerate it with `{apidoc.REGENERATE}`"
    )


def test_every_contract_name_has_an_entry():
    names = documented_names(PAGE.read_text())
    missing = [name for name in CONTRACT if f"tinygrad_edu.{name}" not in names]
    assert not missing, f"contract names without an entry in docs/api.md: {missing}"


def test_the_parser_sees_every_entry():
    """The names found in the page are exactly the generator's entries (protocols included)."""
    expected = {e.path for e in apidoc.entries()} | {m for m, _ in apidoc.NAMESPACES}
    assert documented_names(apidoc.render()) == expected


def _undocumented() -> set[str]:
    needs_doc = {
        "class",
        "exception",
        "function",
        "method",
        "staticmethod",
        "classmethod",
        "property",
    }
    return {
        e.path.removeprefix("tinygrad_edu.")
        for e in apidoc.entries()
        if not e.doc and (e.kind in needs_doc or (e.kind == "attribute" and not e.signature))
    }


def test_every_public_object_has_a_summary():
    offenders = sorted(_undocumented() - UNDOCUMENTED)
    assert not offenders, (
        f"public names without a docstring (its first paragraph is their entry): {offenders}"
    )


def test_the_allowlist_lists_only_undocumented_names():
    stale = sorted(UNDOCUMENTED - _undocumented())
    assert not stale, f"documented now (or gone): delete from UNDOCUMENTED: {stale}"
