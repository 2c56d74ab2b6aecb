"""The PyTorch reference network for the VGG benchmarks: tinygrad_edu's weights in torch modules."""

from __future__ import annotations

import tinygrad_edu as tg
from tinygrad_edu.models.vgg import VGG16


def torch_features(model: VGG16, until: str):
    """``torch.nn.Sequential`` of ``model``'s feature stack up to Keras layer ``until``, frozen."""
    import torch

    torch.set_num_threads(2)
    layers = []
    for module in model.features:
        if isinstance(module, tg.nn.Conv2d):
            conv = torch.nn.Conv2d(module.in_channels, module.out_channels, 3, padding=1)
            conv.weight.data = torch.from_numpy(module.weight.data.copy())
            conv.bias.data = torch.from_numpy(module.bias.data.copy())
            conv.requires_grad_(False)
            layers.append(conv)
        elif isinstance(module, tg.nn.ReLU):
            layers.append(torch.nn.ReLU())
        else:
            layers.append(torch.nn.MaxPool2d(2))
    return torch.nn.Sequential(*layers[: model.keras_layers[until][1] + 1]).eval()
