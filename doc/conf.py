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
    "matplotlib.sphinxext.plot_directive",
    # benchmarks/README.md is the one record of the measured speeds; the
    # benchmarks page renders it rather than keeping a second copy.
    "myst_parser",
]
# The landing and benchmark pages draw their figures at build time.
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
myst_enable_extensions = []
myst_heading_anchors = 3
# Every cross-reference must resolve (-W makes a broken one an error); names
# from other projects resolve only with their inventories (see below).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|sklearn|cvxpy|typing|matplotlib|joblib|dask|threadpoolctl)(\..*)?"),
]
# benchmarks/README.md starts at "##" once its title is cut off.
suppress_warnings = ["myst.header"]
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
