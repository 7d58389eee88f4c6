"""VirtDash settings: every knob is an environment variable with a safe default (see README)."""

from pathlib import Path

import dj_database_url

from virtdash.env import env_abs_path, env_bool, env_int, env_list, env_path_prefixes, env_str, secret_key
from virtdash.schedules import report_schedule

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VIRTDASH_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(BASE_DIR / ".secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "SAMEORIGIN"
SECURE_CONTENT_TYPE_NOSNIFF = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "core",
    "hosts",
    "guests",
    "consoles",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "virtdash.middleware.LoginRequiredEverywhere",
]

ROOT_URLCONF = "virtdash.urls"
ASGI_APPLICATION = "virtdash.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "virtdash.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'virtdash.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes write (web, worker, watcher): wait for the lock instead of failing,
    # and use WAL so readers never block the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        # Pub/sub layer: it delivered every message in the burst test where the core layer
        # silently dropped two thirds (shared/RELIABILITY.md). Clients still resync on gaps.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("VIRTDASH_TASK_TIME_LIMIT", 3600, minimum=10)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("VIRTDASH_VISIBILITY_TIMEOUT", 7200)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE  # crontab schedules below are in this time zone
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_RESULT_EXPIRES = None  # no result backend: no daily backend_cleanup entry in beat

# Scheduled capacity report by e-mail (Procfile `beat:`, started by scripts/up only when set).
VIRTDASH_REPORT_SCHEDULE = env_str("VIRTDASH_REPORT_SCHEDULE", "")  # crontab, e.g. "0 7 * * 1"; empty = off
VIRTDASH_REPORT_RECIPIENTS = env_list("VIRTDASH_REPORT_RECIPIENTS", [])
VIRTDASH_REPORT_AS_USER = env_str("VIRTDASH_REPORT_AS_USER", env_str("VIRTDASH_ADMIN_USER", "admin"))
VIRTDASH_REPORT_PERIOD = env_str("VIRTDASH_REPORT_PERIOD", "week")
CELERY_BEAT_SCHEDULE = report_schedule(VIRTDASH_REPORT_SCHEDULE, VIRTDASH_REPORT_RECIPIENTS, VIRTDASH_REPORT_PERIOD)
VIRTDASH_SITE_URL = env_str("VIRTDASH_SITE_URL", "")  # links in the e-mail, e.g. https://virtdash.example.com
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "virtdash@localhost")

# libvirt access
VIRTDASH_CALL_TIMEOUT = env_int("VIRTDASH_CALL_TIMEOUT", 10, minimum=1)
VIRTDASH_CONNECT_TIMEOUT = env_int("VIRTDASH_CONNECT_TIMEOUT", 5, minimum=1)
VIRTDASH_KEEPALIVE_INTERVAL = env_int("VIRTDASH_KEEPALIVE_INTERVAL", 3, minimum=1)
VIRTDASH_KEEPALIVE_COUNT = env_int("VIRTDASH_KEEPALIVE_COUNT", 3, minimum=1)
VIRTDASH_HOST_REFRESH_SECONDS = env_int("VIRTDASH_HOST_REFRESH_SECONDS", 30, minimum=1)
VIRTDASH_RECONCILE_SECONDS = env_int("VIRTDASH_RECONCILE_SECONDS", 30, minimum=1)
VIRTDASH_SAMPLE_SECONDS = env_int("VIRTDASH_SAMPLE_SECONDS", 10, minimum=1)
# DHCP leases of networks whose page is open are re-read this often by the watcher (0: never; hosts/leases.py).
VIRTDASH_LEASE_POLL_SECONDS = env_int("VIRTDASH_LEASE_POLL_SECONDS", 10, minimum=0)
VIRTDASH_SHUTDOWN_TIMEOUT = env_int("VIRTDASH_SHUTDOWN_TIMEOUT", 120, minimum=1)
VIRTDASH_STALE_JOB_SECONDS = env_int("VIRTDASH_STALE_JOB_SECONDS", 120, minimum=10)
VIRTDASH_QUEUED_JOB_SECONDS = env_int("VIRTDASH_QUEUED_JOB_SECONDS", 1800, minimum=60)
VIRTDASH_CONSOLE_TOKEN_TTL = env_int("VIRTDASH_CONSOLE_TOKEN_TTL", 30, minimum=1)
# Where operators (MANAGE) may put dir/fs/netfs pools on a hypervisor; admins may use any path.
VIRTDASH_POOL_PATHS = env_path_prefixes("VIRTDASH_POOL_PATHS",
                                        "/var/lib/libvirt/images /var/lib/virtdash/pools /srv/virtdash")
# qemu+ssh hosts (libvirt's transport and the console tunnel): the service account's key and
# known_hosts; empty means ssh's defaults (~/.ssh of the account). See hosts/virt/ssh.py.
VIRTDASH_SSH_KEY = env_abs_path("VIRTDASH_SSH_KEY")
VIRTDASH_SSH_KNOWN_HOSTS = env_abs_path("VIRTDASH_SSH_KNOWN_HOSTS")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
