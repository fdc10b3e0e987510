#!/usr/bin/env python
"""Make the rendered site need nothing from the network: serve KaTeX (v0.16.11, MIT, vendored in
scripts/docs_assets/katex, woff2 fonts only) from the site itself, and drop the theme's Google Fonts import (the theme's
font stack falls back to system fonts). Usage: python scripts/docs_offline.py SITE_DIR"""
import os, re, shutil, sys
from pathlib import Path

KATEX_CDN = re.compile(r'https://cdn\.jsdelivr\.net/npm/katex@[0-9.]+/dist')
GFONTS = re.compile(r'@import url\(["\']?https://fonts\.googleapis\.com/[^)]*\);?')

def main(site):
    site = Path(site).resolve()
    dst = site/'site_libs'/'katex'
    shutil.copytree(Path(__file__).parent/'docs_assets'/'katex', dst, dirs_exist_ok=True)
    n_html = n_css = 0
    for p in site.rglob('*.html'):
        s = p.read_text(encoding='utf-8')
        if KATEX_CDN.search(s):
            rel = os.path.relpath(dst, p.parent).replace(os.sep, '/')
            p.write_text(KATEX_CDN.sub(rel, s), encoding='utf-8'); n_html += 1
    for p in site.rglob('*.css'):
        s = p.read_text(encoding='utf-8')
        if GFONTS.search(s): p.write_text(GFONTS.sub('', s), encoding='utf-8'); n_css += 1
    print(f"offline assets: KaTeX served locally on {n_html} pages; web-font import removed from {n_css} stylesheets")

if __name__ == '__main__': main(sys.argv[1])
