"""numpydoc validation of every public name of the package."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

import skconvex  # noqa: E402

# Checks we do not enforce: summary/blank-line style (GL01, GL02), an
# extended summary, See Also and Examples everywhere (ES01, SA01, EX01) and
# numpydoc's rule against naming a single return value (RT02: we name them,
# like scikit-learn). Everything else (parameters documented, in order, with
# types; sections present and well formed) is enforced.
IGNORED = {"GL01", "GL02", "ES01", "SA01", "EX01", "RT02"}


def _public_modules():
    """Every importable module of the package whose dotted path has no private part."""
    names = ["skconvex"]
    for info in pkgutil.walk_packages(skconvex.__path__, prefix="skconvex."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


PUBLIC_MODULES = _public_modules()


def _public_names():
    seen = set()
    for mod_name in PUBLIC_MODULES:
        module = importlib.import_module(mod_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            qualname = f"{obj.__module__}.{obj.__qualname__}"
            if qualname in seen:
                continue
            seen.add(qualname)
            yield f"{mod_name}.{name}", obj
            if inspect.isclass(obj):
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_") or not callable(meth):
                        continue
                    yield f"{mod_name}.{name}.{meth_name}", meth
                for base in obj.__mro__[1:]:
                    if not base.__module__.startswith("skconvex"):
                        continue
                    for meth_name, meth in vars(base).items():
                        if meth_name.startswith("_") or not callable(meth):
                            continue
                        if meth_name in vars(obj):
                            continue
                        yield f"{mod_name}.{name}.{meth_name}", meth


NAMES = sorted({name for name, _ in _public_names()})


def test_there_are_public_names():
    assert "skconvex.ConvexGatedReLUClassifier.fit" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_docstring(name):
    result = numpydoc_validate.validate(name)
    errors = [(code, msg) for code, msg in result["errors"] if code not in IGNORED]
    assert not errors, "\n".join(f"{code}: {msg}" for code, msg in errors)


def test_public_modules_declare_all():
    missing = [
        name
        for name in PUBLIC_MODULES
        if not hasattr(importlib.import_module(name), "__all__")
    ]
    assert not missing, f"public modules without __all__: {missing}"


def test_api_reference_lists_every_public_name():
    """doc/api.rst names every public function and class, so none goes undocumented."""
    api = (Path(__file__).resolve().parents[1] / "doc" / "api.rst").read_text()
    listed = set(re.findall(r"^\s+([\w.]+)\s*$", api, flags=re.MULTILINE))
    documented = set()
    for entry in listed:
        *path, attr = f"skconvex.{entry}".split(".")
        try:
            documented.add(id(getattr(importlib.import_module(".".join(path)), attr)))
        except (ImportError, AttributeError):
            continue
    missing = [
        f"{mod_name}.{name}"
        for mod_name in PUBLIC_MODULES
        for name in importlib.import_module(mod_name).__all__
        if id(getattr(importlib.import_module(mod_name), name)) not in documented
    ]
    assert not missing, f"not in doc/api.rst: {missing}"
