"""Loaded with `-p` before Django's settings: test defaults for the environment.

Real values win (CI passes DATABASE_URL and REDIS_URL); tests run with DEBUG off,
as production does, so they need a SECRET_KEY and plain-http cookies.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789abcdef0123456789")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("STATIC_NO_MANIFEST", "true")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "NxYoPCWmlS2EuVI3ioKy7tXeG3_sQoOKoF5W5xzPIWc=")
