#!/usr/bin/env python
"""Make the rendered site work with no network and from file:// (opening _docs/index.html):

- KaTeX (v0.16.11, MIT, vendored in scripts/docs_assets/katex, woff2 fonts only) is served from the site itself, and the
  theme's Google Fonts import is dropped (the theme's font stack falls back to system fonts);
- search: browsers refuse `fetch("search.json")` on file:// pages, so the index is also written as `search.js` (a script
  setting `window.smalldocsSearchIndex`) and the site's copy of smalldocs.js loads that script instead;
- widgets: pages whose processed notebook (PROC_DIR) holds saved widget state get that state and the vendored
  @jupyter-widgets/html-manager (rsworkbench/assets/html_manager, via rsworkbench.export) as site_libs/html-manager/embed.js,
  which renders the widget outputs in place (docs.sh turns them into view <script> elements before smalldocs renders).

Usage: python scripts/docs_offline.py SITE_DIR [PROC_DIR]"""
import json, os, re, shutil, sys
from pathlib import Path

KATEX_CDN = re.compile(r'https://cdn\.jsdelivr\.net/npm/katex@[0-9.]+/dist')
GFONTS = re.compile(r'@import url\(["\']?https://fonts\.googleapis\.com/[^)]*\);?')
SEARCH_GLOBAL = 'smalldocsSearchIndex'
# smalldocs 0.5.x loadIndex(): the one place that reads search.json
SEARCH_FETCH = re.compile(r'const r = await fetch\(offset \+ "search\.json"\);\s*index = await r\.json\(\);')
SEARCH_LOAD = ('index = window.%s || await new Promise((ok, no) => {  /* search.js: a script loads from file://, fetch does not */\n'
               '        const s = document.createElement("script"); s.src = offset + "search.js";\n'
               '        s.onload = () => ok(window.%s || []); s.onerror = no; document.head.appendChild(s);\n'
               '      });') % (SEARCH_GLOBAL, SEARCH_GLOBAL)

def vendor_katex(site:Path) -> tuple:
    "Serve KaTeX from site_libs/katex and drop web-font imports; returns (pages, stylesheets) changed."
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
    return n_html, n_css

def search_script(site:Path) -> int:
    "Write search.js beside search.json and make the site's smalldocs.js load it; returns the number of index entries."
    index = json.loads((site/'search.json').read_text(encoding='utf-8'))
    (site/'search.js').write_text(f'window.{SEARCH_GLOBAL} = {json.dumps(index, ensure_ascii=False)};\n', encoding='utf-8')
    js_path = site/'site_libs'/'smalldocs.js'
    js = js_path.read_text(encoding='utf-8')
    if SEARCH_GLOBAL not in js:
        js, n = SEARCH_FETCH.subn(lambda m: SEARCH_LOAD, js)
        if n != 1: sys.exit(f'docs_offline: {js_path} does not read search.json as smalldocs 0.5 does; update SEARCH_FETCH in {__file__}')
        js_path.write_text(js, encoding='utf-8')
    return len(index)

def widget_pages(site:Path, proc:Path) -> list:
    "Give each page built from a notebook with saved widget state that state and the vendored manager; returns the pages."
    import nbformat
    from rsworkbench.export import widget_state, page_widget_tags, widget_manager_js
    done, man = [], site/'site_libs'/'html-manager'/'embed.js'
    for nb_path in sorted(proc.rglob('*.ipynb')):
        if '.ipynb_checkpoints' in nb_path.parts: continue
        nb = nbformat.read(nb_path, as_version=4)
        page = site/nb_path.relative_to(proc).with_suffix('.html')
        if not widget_state(nb) or not page.is_file(): continue
        html = page.read_text(encoding='utf-8')
        if 'application/vnd.jupyter.widget-view+json' not in html: continue   # nbdev leaves an empty state on every notebook
        if not man.is_file():
            man.parent.mkdir(parents=True, exist_ok=True); man.write_text(widget_manager_js(), encoding='utf-8')
        if 'application/vnd.jupyter.widget-state+json' in html: continue   # already done
        i = html.rfind('</body>')
        if i < 0: sys.exit(f'docs_offline: {page} has no </body>')
        tags = page_widget_tags(nb, os.path.relpath(man, page.parent).replace(os.sep, '/'))
        page.write_text(html[:i] + tags + html[i:], encoding='utf-8'); done.append(page.relative_to(site).as_posix())
    return done

def main(site, proc=None):
    site = Path(site).resolve()
    n_html, n_css = vendor_katex(site)
    n_idx = search_script(site)
    pages = widget_pages(site, Path(proc).resolve()) if proc else []
    print(f"offline assets: KaTeX served locally on {n_html} pages; web-font import removed from {n_css} stylesheets; "
          f"search index as search.js ({n_idx} entries, works from file://)"
          + (f"; live widgets on {', '.join(pages)}" if pages else ''))

if __name__ == '__main__':
    if len(sys.argv) not in (2, 3): sys.exit(__doc__)
    main(*sys.argv[1:])
