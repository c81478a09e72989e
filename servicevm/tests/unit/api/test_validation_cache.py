"""Validators are built once per schema, not once per request."""

from servicevm.api import schemas
from servicevm.api import validation
from servicevm.tests import base


class TestValidatorCache(base.TestCase):

    def test_resource_query_schemas_do_not_pile_up(self):
        validation.validate(schemas.resource_query(schemas.DEVICE_FIELDS),
                            {})
        known = len(validation._SCHEMAS)
        for _ in range(50):
            validation.validate(
                schemas.resource_query(schemas.DEVICE_FIELDS),
                {'fields': 'name'})
        self.assertEqual(known, len(validation._SCHEMAS))
