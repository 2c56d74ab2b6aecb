"""frozen_vgg16: the commands' VGG16, constant, with the fused kernels preloaded meanwhile."""

from __future__ import annotations

import threading

import pytest

from tinygrad_edu.cli import loading
from tinygrad_edu.models.vgg import VGG16


def test_the_weights_load_while_a_thread_of_its_own_preloads_the_kernels(monkeypatch):
    preloading, loading_started = threading.Event(), threading.Event()
    threads = {}

    def preload():  # waits until the weights have started loading: the two overlap
        threads["preload"] = threading.current_thread().name
        preloading.set()
        assert loading_started.wait(timeout=10)
        return 0.25

    def vgg16(weights):
        threads["load"] = threading.current_thread().name
        loading_started.set()
        assert preloading.wait(timeout=10)
        return VGG16(initialise=False)

    monkeypatch.setattr(loading, "preload", preload)
    monkeypatch.setattr(loading, "vgg16", vgg16)
    model = loading.frozen_vgg16("weights.h5")
    assert threads["load"] == threading.current_thread().name
    assert threads["preload"].startswith("tinygrad_edu_preload")
    assert not any(p.requires_grad for p in model.parameters())


def test_a_failed_load_is_raised_after_the_preloading_finished(monkeypatch):
    finished = []

    def preload():
        finished.append(True)
        return 0.0

    def vgg16(weights):
        raise ValueError(f"{weights}: not a weights file")

    monkeypatch.setattr(loading, "preload", preload)
    monkeypatch.setattr(loading, "vgg16", vgg16)
    with pytest.raises(ValueError, match="not a weights file"):
        loading.frozen_vgg16("bad.h5")
    assert finished == [True]
