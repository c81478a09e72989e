"""Policy decisions are remembered for DECISION_TTL seconds, per rule,
caller and target, and forgotten on reset."""

from unittest import mock

from oslo_policy import policy as oslo_policy

from servicevm.common import context as svm_context
from servicevm.common import exceptions
from servicevm.common import policy
from servicevm.tests import base

RULE = 'servicevm:device:get'


def ctx(project='project-a', roles=('member', 'reader'), user='user-a'):
    return svm_context.RequestContext(user_id=user, project_id=project,
                                      roles=list(roles))


class TestDecisionCache(base.TestCase):

    def setUp(self):
        super().setUp()
        enforcer = policy.get_enforcer()
        self.calls = mock.patch.object(
            enforcer, 'authorize', wraps=enforcer.authorize).start()
        self.addCleanup(mock.patch.stopall)

    def test_same_question_is_asked_once(self):
        for _ in range(5):
            policy.authorize(RULE, ctx(), {'project_id': 'project-a'})
        self.assertEqual(1, self.calls.call_count)

    def test_each_caller_and_target_gets_its_own_decision(self):
        policy.authorize(RULE, ctx(), {'project_id': 'project-a'})
        # Another project's device: refused, though the caller was just
        # allowed the same rule on its own.
        self.assertRaises(exceptions.Forbidden, policy.authorize, RULE,
                          ctx(), {'project_id': 'project-b'})
        self.assertRaises(exceptions.Forbidden, policy.authorize,
                          'servicevm:device:create', ctx(roles=['reader']),
                          {'project_id': 'project-a'})
        policy.authorize('servicevm:device:create', ctx(),
                         {'project_id': 'project-a'})
        self.assertEqual(4, self.calls.call_count)
        # A refusal is remembered too.
        self.assertRaises(exceptions.Forbidden, policy.authorize, RULE,
                          ctx(), {'project_id': 'project-b'})
        self.assertEqual(4, self.calls.call_count)

    def test_a_changed_rule_applies_after_the_ttl(self):
        target = {'project_id': 'project-a'}
        policy.authorize(RULE, ctx(), target)
        policy.get_enforcer().set_rules(oslo_policy.Rules.from_dict(
            {RULE: '!'}), overwrite=False)
        with mock.patch('time.monotonic') as clock:
            clock.return_value = policy._decisions_since + 0.5
            policy.authorize(RULE, ctx(), target)
            clock.return_value = (policy._decisions_since
                                  + policy.DECISION_TTL + 0.1)
            self.assertRaises(exceptions.Forbidden, policy.authorize, RULE,
                              ctx(), target)

    def test_reset_forgets(self):
        policy.authorize(RULE, ctx(), {'project_id': 'project-a'})
        policy.reset()
        enforcer = policy.get_enforcer()
        with mock.patch.object(enforcer, 'authorize',
                               return_value=False) as calls:
            self.assertRaises(exceptions.Forbidden, policy.authorize, RULE,
                              ctx(), {'project_id': 'project-a'})
        self.assertEqual(1, calls.call_count)

    def test_unhashable_target_is_not_remembered(self):
        target = {'project_id': 'project-a', 'tags': ['a']}
        policy.authorize(RULE, ctx(), target)
        policy.authorize(RULE, ctx(), target)
        self.assertEqual(2, self.calls.call_count)
