from django.urls import path

from consoles.proxy import VncProxy
from consoles.serial import SerialBridge

websocket_urlpatterns = [
    # The VNC proxy: one path on the dashboard's own origin; the token names the target.
    path("websockify/<str:uuid>", VncProxy()),
    path("ws/consoles/<str:uuid>/serial/", SerialBridge()),
]
