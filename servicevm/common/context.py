"""The request context: who is calling, on behalf of which project."""

from oslo_context import context
from oslo_db.sqlalchemy import enginefacade

# Keystone's default implied roles: admin implies member implies reader.
IMPLIED_ROLES = {'admin': ('member', 'reader'), 'member': ('reader',)}


def expand_roles(roles):
    """Add the roles implied by ``roles`` (keystone does the same for
    tokens; noauth needs it done here)."""
    result = []
    for role in roles:
        role = role.strip().lower()
        if role and role not in result:
            result.append(role)
    for role in list(result):
        for implied in IMPLIED_ROLES.get(role, ()):
            if implied not in result:
                result.append(implied)
    return result


@enginefacade.transaction_context_provider
class RequestContext(context.RequestContext):
    """oslo.context's context with servicevm's flags."""

    def __init__(self, all_projects=False, **kwargs):
        super().__init__(**kwargs)
        self.all_projects = all_projects

    @property
    def is_admin_role(self):
        return 'admin' in (self.roles or ())

    def to_dict(self):
        values = super().to_dict()
        values['all_projects'] = self.all_projects
        return values

    @classmethod
    def from_dict(cls, values, **kwargs):
        kwargs.setdefault('all_projects', values.get('all_projects', False))
        return super().from_dict(values, **kwargs)


def get_admin_context():
    """A context for the service's own work (conductor, periodic tasks)."""
    return RequestContext(is_admin=True, roles=['admin', 'member', 'reader'],
                          all_projects=True, overwrite=False)
