"""Shared constants and the OIDC fixture for the Google fake tests (test_fake_oidc/gmail/pubsub_push)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    from tests.fakes.gmail import FakeGmail
    from tests.fakes.google_oidc import FakeGoogleOIDC
    from tests.fakes.pubsub_push import PushSigner
except ImportError:  # tests/ is not a package; pytest puts tests/ itself on sys.path
    from fakes.gmail import FakeGmail
    from fakes.google_oidc import FakeGoogleOIDC
    from fakes.pubsub_push import PushSigner

REDIRECT = "http://127.0.0.1:8765/auth/callback"
SEND = "https://www.googleapis.com/auth/gmail.send"
READ = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
SCOPE = f"openid email profile {SEND} {READ}"
ALICE = "alice@example.com"
PUSH_AUD = "https://assistant.example/api/gmail/push"


@pytest.fixture
def oidc() -> Iterator[FakeGoogleOIDC]:
    """A started fake OIDC provider with Alice registered."""
    with FakeGoogleOIDC(redirect_uris=[REDIRECT]) as fake:
        fake.add_user("110000000000000000001", ALICE, "Alice Example")
        yield fake
