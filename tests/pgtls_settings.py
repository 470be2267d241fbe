"""``tests.settings`` plus the ``pgtls`` database and TASKS alias (tests/integration/
test_postgres_tls.py): the throwaway TLS-only PostgreSQL of ``tests.postgres_servers``.

The DATABASES entry comes as JSON in ``VTASKS_TEST_PGTLS_DATABASE`` (the environment, not the
command line, so the password stays out of the process table).
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, TASKS

PGTLS = "pgtls"

ENV = "VTASKS_TEST_PGTLS_DATABASE"
BACKEND = {
    "BACKEND": "vtasks.backends.database.DatabaseBackend",
    "QUEUES": [],
    "OPTIONS": {"database_alias": PGTLS},
}

if os.environ.get(ENV):  # unset when the test itself imports these names
    DATABASES[PGTLS] = json.loads(os.environ[ENV])
    TASKS[PGTLS] = BACKEND
