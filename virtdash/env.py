"""Typed environment-variable helpers that fail loudly on nonsense."""

import os
from pathlib import Path


class SettingError(ValueError):
    """An environment variable holds a value we cannot use."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SettingError(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_abs_path(name: str) -> str:
    """An optional absolute file path ("" when unset); no quotes or control characters."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    if not raw.startswith("/") or '"' in raw or any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise SettingError(f"{name} must be an absolute path without quotes or control characters, not {raw!r}")
    return raw


def env_path_prefixes(name: str, default: str) -> tuple[str, ...]:
    """Absolute directory prefixes separated by spaces or colons, normalised (no trailing '/');
    a relative entry or one with a '..' component is refused."""
    raw = os.environ.get(name, "")
    items = (raw if raw.strip() else default).replace(":", " ").split()
    prefixes = []
    for item in items:
        if not item.startswith("/") or ".." in item.split("/") or any(ord(ch) < 32 or ord(ch) == 127 for ch in item):
            raise SettingError(f"{name}: {item!r} is not an absolute path without '..' components")
        prefixes.append("/" + "/".join(part for part in item.split("/") if part not in ("", ".")))
    return tuple(dict.fromkeys(prefixes))


def secret_key(path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into an untracked file."""
    value = os.environ.get("SECRET_KEY")
    if value:
        return value
    if path.exists():
        return path.read_text().strip()
    from django.core.management.utils import get_random_secret_key

    key = get_random_secret_key()
    path.touch(mode=0o600)
    path.write_text(key)
    return key
