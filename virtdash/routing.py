from django.urls import path

from consoles.routing import websocket_urlpatterns as console_patterns
from core.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
    *console_patterns,
]
