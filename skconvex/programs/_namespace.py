"""Array-API primitives of the problem layer: namespace, device and host copies.

The programs compute in whatever namespace their arrays live in (numpy, or a
torch / CuPy / array-api-strict namespace after
:meth:`~skconvex.programs.problem.ConvexProblem.to_namespace`). These four
functions are all they need to know about namespaces; they rest on
``array-api-compat`` (the adapter scikit-learn and SciPy vendor) rather than
on scikit-learn, so the problem layer stays independent of the estimators.
"""

import array_api_compat
import numpy as np

__all__ = ["device_of", "namespace_of", "supports_float64", "to_numpy"]


def namespace_of(a):
    """The array-API namespace of ``a`` (array-api-compat's wrapper for torch, CuPy).

    Unlike scikit-learn's ``get_namespace`` it does not read the
    ``array_api_dispatch`` setting: solvers call it on arrays already moved
    to a namespace, many times per iteration.
    """
    return array_api_compat.array_namespace(a)


def device_of(a):
    """The device ``a`` lives on (``"cpu"`` for numpy)."""
    return array_api_compat.device(a)


def to_numpy(a):
    """``a`` itself when numpy, else a copy of it on the host as numpy (small arrays)."""
    if isinstance(a, np.ndarray):
        return a
    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(a):
        return a.get()
    # Other namespaces (array-api-strict, ...) through DLPack; numpy >= 2.1
    # asks the producer for a host copy, older numpy only reads host arrays.
    try:
        return np.from_dlpack(a, device="cpu")
    except TypeError:
        return np.from_dlpack(a)


def supports_float64(xp, device):
    """Whether ``device`` of namespace ``xp`` computes in float64 (Apple MPS does not)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:  # numpy < 2 and namespaces that predate the inspection API
        return True
    return "float64" in info().dtypes(kind="real floating", device=device)
