"""ASGI entry point: Django for HTTP, Channels for WebSockets (origin-checked, session auth)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "virtdash.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from hosts.upload_stream import route_uploads
from virtdash.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": route_uploads(django_asgi_app),  # volume uploads stream past Django's body spooling
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
