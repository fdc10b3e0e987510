#!/usr/bin/env python
"""Export a notebook as one self-contained HTML file whose widgets render offline (same as `python -m rsworkbench.export`).

    .venv/bin/python scripts/export_html.py nbs/tutorials/widgets_tour.ipynb outputs/widgets_tour.html
    .venv/bin/python scripts/export_html.py NB.ipynb --no-execute      # a notebook saved from JupyterLab with its widget state

It runs the notebook in a fresh kernel (nbclient, widget state stored), converts it with nbconvert's lab template without
its CDN scripts, and inlines the vendored @jupyter-widgets/html-manager (rsworkbench/assets/html_manager)."""
from rsworkbench.export import main

if __name__ == '__main__': main()
