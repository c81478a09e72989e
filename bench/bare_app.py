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


app = pecan.make_app(RootController(), force_canonical=False,
                     guess_content_type_from_ext=False, debug=False,
                     logging={})
