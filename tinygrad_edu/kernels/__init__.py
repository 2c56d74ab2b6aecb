"""NumPy compute kernels: plain arrays in, plain arrays out; no Tensors and no autodiff here.

The differentiable ops in :mod:`tinygrad_edu.ops` call these for the heavy arithmetic:

* :mod:`.conv` -- 2-D convolution, its input gradient and its weight gradient (im2col, col2im or
  Winograd, chosen per layer shape), with bias, ReLU and ReLU-mask fusion;
* :mod:`.gemm` -- im2col, col2im and the kernel-as-stored formulations (one GEMM each);
* :mod:`.winograd` -- Winograd's minimal filtering F(2x2, 3x3) and F(4x4, 3x3);
* :mod:`.pooling` -- max pooling with compact winner indices, and its scatter/gather adjoints;
* :mod:`.resample` -- bilinear warps through precomputed taps, and their exact adjoint;
* :mod:`.layout` -- NHWC views, padding, window views and chunking shared by the above;
* :mod:`.layout_cache` -- re-laid-out kernels of frozen weights, reused while their content is
  unchanged;
* :mod:`.frozen` -- arrays whose contents can never change (frozen parameters);
* :mod:`.buffers` -- a caching allocator: large outputs and scratch arrays reuse the memory of
  arrays nobody references any more;
* :mod:`.threads` -- the worker threads every kernel shares its chunks among.
"""
