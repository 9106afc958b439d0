"""Sphinx configuration of the course website (built by ``site/build.py``; see ``site/README.md``).

The source folder is a staging copy that ``build.py`` assembles (the landing page and the executed
notebooks); this file stays in ``site/`` next to the static files. Everything the pages load is local:
MathJax 3 is copied from the ``sphinx-mathjax-offline`` wheel into ``_static/mathjax`` by the build,
no notebook is executed by Sphinx, and no widget JavaScript is requested from a CDN.
"""

from __future__ import annotations

import os

project = "Explaining CNNs"
author = "The Explaining CNNs authors"
copyright = "the Explaining CNNs authors, MIT licence"  # noqa: A001 (Sphinx's name)
REPOSITORY = "https://github.com/explaining-cnns/explaining-cnns"

extensions = ["myst_nb", "sphinx.ext.githubpages"]  # githubpages: writes .nojekyll
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# ---------------------------------------------------------------- notebooks: never executed here
nb_execution_mode = "off"  # build.py hands over notebooks that are already executed
nb_merge_streams = True
nb_output_stderr = "remove"  # warnings printed by libraries are not course content
# the explorers' live widget view needs a kernel; the site shows their static text/html version
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}  # and never the html-manager from a CDN

# ---------------------------------------------------------------- Markdown and math
# the notebooks put $$...$$ inside paragraphs: without dmath_double_inline it would leak as raw $$
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_dmath_double_inline = True
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # notebooks may start at ## after a # title cell

# MathJax 3 from the local copy (tex-chtml-full.js and its woff-v2 fonts), never from a CDN
mathjax_path = "mathjax/tex-chtml-full.js"
# MathJax 3 reads window.MathJax; MyST adds processHtmlClass (typeset only its math elements);
# display equations wider than the column scroll sideways (static/site.css)
mathjax3_config = {"options": {"ignoreHtmlClass": "tex2jax_ignore|mathjax_ignore"}}

# ---------------------------------------------------------------- HTML
html_theme = "sphinx_book_theme"
html_title = "Explaining CNNs"
html_static_path = ["static"]
html_css_files = ["site.css"]
html_js_files = [("explorer.js", {"defer": "defer"})]
html_copy_source = False  # the executed notebooks hold every frame: do not ship them twice
html_show_sourcelink = False
html_show_search_summary = False  # summaries fetch() each page, which file:// forbids
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_source_button": False,
    "use_edit_page_button": False,
    "use_issues_button": False,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "notebook_interface": "jupyterlab",
    },
    "navigation_with_keys": False,
    "navbar_persistent": [],  # one search field, in the sidebar (not a second one in a top bar)
}
html_context = {"default_mode": "light"}

# the site's commit, shown in the footer when the build knows it
_commit = os.environ.get("CAMLIB_SITE_COMMIT", "")
if _commit:
    html_theme_options["extra_footer"] = f"Built from commit {_commit[:12]}."
