"""Console settings, read once from the environment (see README): safe defaults, loud on nonsense."""

from django.conf import settings

from virtdash.env import SettingError, env_int, env_str

# A token lives at most this long (settings.VIRTDASH_CONSOLE_TOKEN_TTL, 30 s by default).
TOKEN_TTL = min(30, settings.VIRTDASH_CONSOLE_TOKEN_TTL)
# Open console sessions (VNC + serial) per user, across all web processes.
MAX_SESSIONS_PER_USER = env_int("VIRTDASH_CONSOLE_MAX_PER_USER", 6, minimum=1)
# A session with no input from the browser for this long is closed.
IDLE_TIMEOUT = env_int("VIRTDASH_CONSOLE_IDLE_SECONDS", 1800, minimum=10)
# No session lives longer than this, whatever happens on it.
ABSOLUTE_TIMEOUT = env_int("VIRTDASH_CONSOLE_MAX_SECONDS", 8 * 3600, minimum=60)
# Bytes read from the target per chunk; with the ASGI server's write buffer (64 KiB high-water
# mark) this bounds memory per session to well under 1 MiB: we await every send.
CHUNK = 65536
# Largest single message accepted from the browser (noVNC sends tiny input events).
MAX_CLIENT_MESSAGE = env_int("VIRTDASH_CONSOLE_MAX_CLIENT_MESSAGE", 1 << 20, minimum=4096)
# Connecting to a VNC server (or an SSH tunnel) gives up after this long.
CONNECT_TIMEOUT = env_int("VIRTDASH_CONSOLE_CONNECT_TIMEOUT", 10, minimum=1)
# Serial: output waiting for the browser beyond this pauses reading from the guest.
SERIAL_HIGH_WATER = env_int("VIRTDASH_SERIAL_HIGH_WATER", 1 << 20, minimum=4096)
# SSH tunnels to qemu+ssh hosts: the service account's key (empty: ssh's defaults) and known_hosts.
SSH_KEY = settings.VIRTDASH_SSH_KEY  # the same values libvirt's ssh transport uses (hosts/virt/ssh.py)
SSH_KNOWN_HOSTS = settings.VIRTDASH_SSH_KNOWN_HOSTS
# Thumbnails: at most one screenshot per guest per this many seconds.
THUMBNAIL_SECONDS = 30
THUMBNAIL_KEEP_SECONDS = 600
# Open sessions re-check the policy this often: revoking a permission closes them.
RECHECK_SECONDS = env_int("VIRTDASH_CONSOLE_RECHECK_SECONDS", 5, minimum=1)
# Which proxy the VNC page uses: "inprocess" (the default: /websockify/<uuid> inside the web
# process) or "websockify" (the separate websockify tier, consoles/websockify_plugin.py, reached at
# WEBSOCKIFY_URL). Grants the tier cannot serve (password, SSH tunnel, view-only) stay in-process.
TRANSPORTS = ("inprocess", "websockify")
TRANSPORT = env_str("VIRTDASH_CONSOLE_TRANSPORT", "inprocess").strip().lower() or "inprocess"
if TRANSPORT not in TRANSPORTS:
    raise SettingError(f"VIRTDASH_CONSOLE_TRANSPORT must be one of {', '.join(TRANSPORTS)}, not {TRANSPORT!r}")
# Where browsers reach the websockify tier: a path on the site's own origin (a reverse-proxy rule,
# see deploy/nginx/) or a full ws:// / wss:// URL of a console machine. The page appends ?token=.
WEBSOCKIFY_URL = env_str("VIRTDASH_WEBSOCKIFY_URL", "/websockify-tier/").strip()
if not WEBSOCKIFY_URL.startswith(("/", "ws://", "wss://")) or any(c in WEBSOCKIFY_URL for c in "?#\\ "):
    raise SettingError("VIRTDASH_WEBSOCKIFY_URL must be a path (/websockify-tier/) or a ws:// or wss:// URL "
                       f"without query or fragment, not {WEBSOCKIFY_URL!r}")
