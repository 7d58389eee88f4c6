"""nginx in the foreground on loopback with the shipped site config (deploy/nginx/virtdash.conf)
and a throw-away self-signed certificate: what the console tests put in front of VirtDash."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO
from tests.stack import free_port, wait_for_port


@contextlib.contextmanager
def shipped_site(web_port: int, *, port: int | None = None, extra_location: str = "") -> Iterator[tuple[str, Path]]:
    """Yield (https base URL, nginx's folder); `extra_location` goes before the site's `location /`."""
    port = port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="vdtest-nginx-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
    site = (REPO / "deploy" / "nginx" / "virtdash.conf").read_text()
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{web_port};")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    site = site.replace("/etc/ssl/virtdash/fullchain.pem", str(tmp / "cert.pem"))
    site = site.replace("/etc/ssl/virtdash/privkey.pem", str(tmp / "key.pem"))
    if extra_location:
        site = site.replace("    location / {", extra_location + "\n\n    location / {", 1)
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(
        f"worker_processes 1;\nerror_log {tmp}/error.log;\npid {tmp}/nginx.pid;\nevents {{}}\n"
        f"http {{\n access_log {tmp}/access.log;\n client_body_temp_path {tmp}/body;\n"
        f" proxy_temp_path {tmp}/proxy;\n fastcgi_temp_path {tmp}/fcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n"
        f" scgi_temp_path {tmp}/scgi;\n include {tmp}/site.conf;\n}}\n")
    proc = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, 10)
        yield f"https://127.0.0.1:{port}", tmp
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
