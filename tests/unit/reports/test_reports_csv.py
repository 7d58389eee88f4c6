"""CSV exports: proper quoting and no spreadsheet formulas from user-controlled text."""

import csv
import io

from guests.models import Guest
from reports.exports import safe_cell


def test_formula_starts_get_a_leading_quote_and_numbers_stay_numbers():
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("+cmd") == "'+cmd"
    assert safe_cell("-2+3") == "'-2+3"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("\t=x") == "'\t=x"
    assert safe_cell("plain") == "plain"
    assert safe_cell(-3) == -3
    assert safe_cell(None) == ""


def test_hostile_owner_and_tags_are_exported_inert_and_quoted(small_seed, admin_client):
    guest = Guest.objects.order_by("name").first()
    guest.owner = '=HYPERLINK("http://x","a, b")'
    guest.tags = ['@evil', 'quote"d', "line\nbreak"]
    guest.save()
    body = admin_client.get("/reports/breakdown.csv", {"by": "owner"}).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert [r[0] for r in rows if "HYPERLINK" in r[0]] == ["'=HYPERLINK(\"http://x\",\"a, b\")"]
    tags = list(csv.reader(io.StringIO(admin_client.get("/reports/breakdown.csv", {"by": "tag"}).content.decode())))
    names = {r[0] for r in tags[1:]}
    assert {"'@evil", 'quote"d', "line\nbreak"} <= names


def test_hostile_names_are_escaped_on_the_pages(small_seed, admin_client):
    guest = Guest.objects.order_by("name").first()
    guest.state = "shutoff"  # stopped guests with disks are always listed
    guest.name = '<script>alert(1)</script>'
    guest.owner = '<img src=x onerror=alert(2)>'
    guest.save()
    html = admin_client.get("/reports/rightsizing/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html = admin_client.get("/reports/breakdown/", {"by": "owner"}).content.decode()
    assert "<img src=x" not in html
