"""Find every estimator the package defines, so tests cannot leave one out."""

import inspect
import pkgutil
from importlib import import_module

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]


def all_estimators():
    """Every public scikit-learn estimator class defined in skconvex.

    Walks all submodules (private ones included, since implementations live
    there) and keeps the classes that subclass
    :class:`~sklearn.base.BaseEstimator`, are defined inside skconvex, are not
    abstract and whose names do not start with an underscore.

    Returns
    -------
    estimators : list of (str, type)
        ``(name, class)`` pairs sorted by name.

    Examples
    --------
    >>> from skconvex.discovery import all_estimators
    >>> names = [name for name, _ in all_estimators()]
    >>> "ConvexGatedReLUClassifier" in names
    True
    """
    import skconvex

    found = {}
    modules = [skconvex] + [
        import_module(info.name)
        for info in pkgutil.walk_packages(skconvex.__path__, prefix="skconvex.")
        if ".tests" not in info.name and not info.name.endswith("__main__")
    ]
    for module in modules:
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("skconvex")
                and not name.startswith("_")
                and not inspect.isabstract(cls)
                and not name.startswith("Base")
            ):
                found[name] = cls
    return sorted(found.items())
