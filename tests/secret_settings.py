"""``tests.settings`` with secrets in the connection settings (tests/e2e/test_secrets.py).

The PostgreSQL server of the tests trusts local connections, so its ``PASSWORD`` is sent and
ignored; the Valkey server's ``default`` user is ``nopass``, which accepts any password.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, TASKS

SECRET = "s3cr3t-PW-4f9a1c"

if "pg" in DATABASES:
    DATABASES["pg"] = {**DATABASES["pg"], "PASSWORD": SECRET}
if "valkey" in TASKS:
    _url = urlsplit(os.environ["VTASKS_TEST_VALKEY_URL"])
    _netloc = f"default:{SECRET}@{_url.hostname}:{_url.port or 6379}"
    TASKS["valkey"]["OPTIONS"]["BROKER_URL"] = urlunsplit(_url._replace(netloc=_netloc))
