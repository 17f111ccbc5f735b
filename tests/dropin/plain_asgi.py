"""An ASGI module as Channels' docs write it, without LiveRec's helper (tests/dropin/test_checks.py)."""
from django.core.asgi import get_asgi_application

application = get_asgi_application()
