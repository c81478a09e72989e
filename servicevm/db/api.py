"""The database interface every other layer calls.

``get_instance()`` returns the backend's ``Connection``; its methods take a
request context first and apply tenancy: a caller that is not an admin
sees only its own project's rows, and an admin sees every project's rows
when reading one by id, or when listing with ``all_projects``.
"""

_INSTANCE = None


def get_instance():
    global _INSTANCE
    if _INSTANCE is None:
        from servicevm.db.sqlalchemy import api as sqla_api
        _INSTANCE = sqla_api.Connection()
    return _INSTANCE
