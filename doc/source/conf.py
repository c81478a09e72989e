# Sphinx configuration of the servicevm user guide (tox -e docs).

project = 'servicevm'
copyright = '2026, the servicevm developers'
extensions = []
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
exclude_patterns = []
html_theme = 'alabaster'
html_static_path = []
pygments_style = 'sphinx'
