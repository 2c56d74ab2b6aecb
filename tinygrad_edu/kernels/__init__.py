"""NumPy compute kernels: plain arrays in, plain arrays out; no Tensors and no autodiff here.

Read :mod:`.reference` first: the convolution, its two adjoints and max pooling as plain sums.
The differentiable ops in :mod:`tinygrad_edu.ops` call the modules beside it:

* :mod:`.conv` -- the convolution, its input gradient and its weight gradient, fast (choosing
  im2col, col2im or Winograd per layer shape), with bias, ReLU and ReLU-mask fusion;
* :mod:`.pooling` -- max pooling with compact winner indices, and its scatter/gather adjoints;
* :mod:`.resample` -- bilinear warps through precomputed taps, and their exact adjoint.

The speed machinery lives in :mod:`.fast`; every fast path is tested equal to :mod:`.reference`.
With the optional ``jit`` extra (numba), :mod:`.jit` replaces the passes around the matrix
products with fused kernels -- 2x2 max pooling, and Winograd's transforms, which makes the larger
F(4x4, 3x3) pay; ``TINYGRAD_EDU_JIT=0`` keeps the NumPy kernels.
"""
