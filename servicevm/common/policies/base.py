from oslo_policy import policy

ADMIN = 'rule:admin'
PROJECT_MEMBER = 'rule:project_member'
PROJECT_READER = 'rule:project_reader'
ADMIN_OR_MEMBER = 'rule:admin or rule:project_member'
ADMIN_OR_READER = 'rule:admin or rule:project_reader'

rules = [
    policy.RuleDefault(
        name='admin', check_str='role:admin',
        description='A cloud administrator: every project, every action.'),
    policy.RuleDefault(
        name='project_member',
        check_str='role:member and project_id:%(project_id)s',
        description='A member of the project that owns the resource: '
                    'reads and writes in that project.'),
    policy.RuleDefault(
        name='project_reader',
        check_str='role:reader and project_id:%(project_id)s',
        description='A reader of the project that owns the resource: '
                    'reads only.'),
]


def list_rules():
    return rules


def crud_rules(resource, path, plural_path, extra=()):
    """The rules of one resource: list, list across projects, show,
    create, update and delete, plus ``extra`` (name, check, description,
    method, path) tuples."""
    def rule(action, check, description, operations):
        return policy.DocumentedRuleDefault(
            name='servicevm:%s:%s' % (resource, action),
            check_str=check,
            description=description,
            operations=[{'method': m, 'path': p} for m, p in operations],
            scope_types=['project'])

    human = resource.replace('_', ' ')
    result = [
        rule('get_all', ADMIN_OR_READER, 'List %ss.' % human,
             [('GET', plural_path)]),
        rule('get_all:all_projects', ADMIN,
             'List the %ss of every project (all_projects=1).' % human,
             [('GET', plural_path)]),
        rule('get', ADMIN_OR_READER, 'Show a %s.' % human,
             [('GET', path)]),
        rule('create', ADMIN_OR_MEMBER, 'Create a %s.' % human,
             [('POST', plural_path)]),
        rule('update', ADMIN_OR_MEMBER, 'Update a %s.' % human,
             [('PATCH', path), ('PUT', path)]),
        rule('delete', ADMIN_OR_MEMBER, 'Delete a %s.' % human,
             [('DELETE', path)]),
    ]
    for action, check, description, method, p in extra:
        result.append(rule(action, check, description, [(method, p)]))
    return result
