"""The speed machinery behind :mod:`tinygrad_edu.kernels.conv` and ``.pooling``.

* :mod:`.gemm` -- im2col, col2im and the kernel-as-stored formulations (one GEMM each);
* :mod:`.winograd` -- Winograd's minimal filtering F(2x2, 3x3);
* :mod:`.layout` -- NHWC views, padding, window views and chunking shared by the above;
* :mod:`.layout_cache` -- re-laid-out kernels, reused while their version counter stands;
* :mod:`.threads` -- the worker threads every kernel shares its chunks among.
"""
