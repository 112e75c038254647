"""doc/check_site.py, the CI step that checks the built gallery, finds what it must."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_site", ROOT / "doc" / "check_site.py")
check_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_site)

FIGURE = '<img alt="x" src="../_images/sphx_glr_plot_a_001.png" />'
PRINTED = '<div class="sphx-glr-script-out highlight-none"><pre>0.97</pre></div>'


def _site(tmp_path, pages, landing="<img src='x.png'>", bench="<img src='y.png'>"):
    (tmp_path / "auto_examples").mkdir()
    for name, html in pages.items():
        (tmp_path / "auto_examples" / name).write_text(html)
    (tmp_path / "index.html").write_text(landing)
    (tmp_path / "benchmarks.html").write_text(bench)
    return tmp_path


def test_pages_with_figures_or_output_pass(tmp_path, capsys):
    site = _site(tmp_path, {"plot_a.html": FIGURE, "plot_b.html": PRINTED})
    assert check_site.main([str(site)]) == 0
    assert "2 gallery pages" in capsys.readouterr().out


def test_unexecuted_pages_and_bare_landing_fail(tmp_path, capsys):
    site = _site(tmp_path, {"plot_a.html": FIGURE, "plot_b.html": "<pre>code only</pre>"}, landing="<p>hi</p>")
    assert check_site.main([str(site)]) == 1
    err = capsys.readouterr().err
    assert "plot_b.html" in err and "index.html" in err and "plot_a.html" not in err


def test_missing_gallery_fails(tmp_path):
    assert check_site.main([str(tmp_path)]) == 1
