"""Sphinx configuration of the skconvex documentation (``pip install -e ".[doc]"``)."""

import os

import skconvex

project = "skconvex"
author = "skconvex developers"
release = skconvex.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
templates_path = ["_templates"]
# Cross-links to other projects need their inventories from the network, which
# CI does not have; set SKCONVEX_DOC_INTERSPHINX=1 to build with them.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }
    if os.environ.get("SKCONVEX_DOC_INTERSPHINX")
    else {}
)
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "backreferences_dir": "generated",
    "doc_module": ("skconvex",),
    "reference_url": {"skconvex": None},
}
html_theme = "pydata_sphinx_theme"
exclude_patterns = ["_build"]
