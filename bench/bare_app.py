"""The floor of bench/api.py: a bare Pecan app, one controller returning a
constant JSON body, built with the same Pecan options as servicevm's API.

    gunicorn --pythonpath bench 'bare_app:app'
"""

import pecan

BODY = {'name': 'bare', 'description': 'A constant body for the floor.',
        'version': {'id': 'v1', 'status': 'CURRENT'}}


class RootController:

    @pecan.expose('json')
    def index(self):
        return BODY


def make_app(root):
    """A Pecan app of ``root`` with the options of servicevm's API."""
    return pecan.make_app(root, force_canonical=False,
                          guess_content_type_from_ext=False, debug=False,
                          logging={})


app = make_app(RootController())
