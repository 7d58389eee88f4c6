from django.db import models


class HostStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked yet"
    CONNECTED = "connected", "Connected"
    UNREACHABLE = "unreachable", "Unreachable"
    DISABLED = "disabled", "Disabled"


HOST_STATUS_COLOURS = {
    HostStatus.UNKNOWN: "grey",
    HostStatus.CONNECTED: "green",
    HostStatus.UNREACHABLE: "red",
    HostStatus.DISABLED: "grey",
}
