"""Point the offline site's API cross-links at its own pages.

nbdev links every backticked symbol to `{doc_host}{doc_baseurl}/{output-file}#{anchor}` (the published Quarto site, where
`21_models.baselines.ipynb` becomes `models.baselines.html`). smalldocs names each page after its notebook, so offline those
links would leave the site for pages that are not there. This rewrites them to relative links to the page built from the
notebook whose front matter has that `output-file`; links to any other URL are left as they are.

Usage: python scripts/docs_links.py PROC_DIR SITE_DIR [BASE_URL]   (default: doc_host + doc_baseurl of settings.ini;
prints how many links it rewrote and how many it could not)
"""
import json, os, re, sys
from pathlib import Path
import yaml

def output_files(proc:Path) -> dict:
    "`output-file` (as nbdev writes it into the processed notebooks' front matter) -> the site path smalldocs gives that notebook."
    pages = {}
    for nb in sorted(proc.rglob('*.ipynb')):
        if '.ipynb_checkpoints' in nb.parts: continue
        cells = json.loads(nb.read_text(encoding='utf-8')).get('cells', [])
        src = ''.join(cells[0].get('source', '')) if cells else ''
        m = re.match(r'\s*---\n(.*?)\n---', src, re.S)
        fm = (yaml.safe_load(m.group(1)) or {}) if m else {}
        rel = nb.relative_to(proc)
        if fm.get('output-file'): pages[(rel.parent/fm['output-file']).as_posix()] = rel.with_suffix('.html').as_posix()
    return pages

def localize_links(site:Path, proc:Path, base:str) -> tuple:
    "Rewrite `href=\"{base}PAGE#anchor\"` in every HTML file of `site` to a relative link; returns (rewritten, left as they were)."
    pages, base = output_files(proc), base.rstrip('/') + '/'
    pat = re.compile(r'href="' + re.escape(base) + r'([^"#?]*)([^"]*)"')
    done = left = 0
    for html in sorted(site.rglob('*.html')):
        here = html.parent.relative_to(site)
        def sub(m):
            nonlocal done, left
            target = pages.get(m.group(1) or 'index.html')
            if target is None: left += 1; return m.group(0)
            done += 1
            return f'href="{os.path.relpath(target, here.as_posix() or ".")}{m.group(2)}"'
        text = html.read_text(encoding='utf-8')
        new = pat.sub(sub, text)
        if new != text: html.write_text(new, encoding='utf-8')
    return done, left

if __name__ == '__main__':
    if len(sys.argv) not in (3, 4): sys.exit(__doc__)
    if len(sys.argv) == 4: base = sys.argv[3]
    else:
        from nbdev.config import get_config
        cfg = get_config(); base = cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/')
    done, left = localize_links(Path(sys.argv[2]), Path(sys.argv[1]), base)
    print(f'cross-links: {done} pointed at local pages' + (f', {left} to unknown pages left as they were' if left else ''))
