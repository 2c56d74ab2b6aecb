"""keep_freed_memory: freed arrays' memory is reused, not faulted in again from the kernel."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tinygrad_edu.kernels.memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

#: a child process: allocate, write and free a 64 MiB array; print the page faults of doing it
#: again (4 KiB pages: NumPy's huge-page advice is switched off in its environment)
REFAULTS = """
import resource, sys
import numpy as np
from tinygrad_edu.kernels.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()  # a second call changes nothing more
def touch():
    a = np.empty(2**24, dtype=np.float32)
    a.fill(1.0)
    del a
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def refaults(policy: str) -> int:
    env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE="0")
    done = subprocess.run(
        [sys.executable, "-c", REFAULTS, policy], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="the policy is glibc's (mallopt)")
def test_a_freed_array_is_reused_without_page_faults():
    pages = 2**26 // 4096
    assert refaults("default") > pages // 2  # glibc hands the pages back and faults them in again
    assert refaults("keep") < pages // 50


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda *args, **kwargs: ("musl", "1.2"))
    assert keep_freed_memory() is False
