"""RFB helpers: the VNC password answer and the view-only filter."""

from __future__ import annotations

import struct

import pytest

from consoles.rfb import RfbError, ViewOnlyFilter, vnc_response


def test_the_vnc_answer_uses_only_the_first_eight_password_characters():
    # QEMU accepting the answer is checked against a real guest in the integration tests.
    challenge = bytes(range(16))
    answer = vnc_response("password", challenge)
    assert len(answer) == 16 and answer == vnc_response("password-and-more", challenge)
    assert answer != vnc_response("passwore", challenge)


def test_a_view_only_session_passes_update_requests_and_drops_keys_pointer_and_clipboard():
    f = ViewOnlyFilter()
    update = bytes([3, 0]) + struct.pack(">HHHH", 0, 0, 640, 480)
    key = bytes([4, 1, 0, 0]) + struct.pack(">I", 0xFFE3)
    pointer = bytes([5, 1]) + struct.pack(">HH", 10, 10)
    cut = bytes([6, 0, 0, 0]) + struct.pack(">I", 3) + b"abc"
    encodings = bytes([2, 0]) + struct.pack(">H", 2) + struct.pack(">ii", 0, -223)
    out = f.feed(b"\x00" + key + update[:4]) + f.feed(update[4:] + pointer + cut + encodings)
    assert out == b"\x01" + update + encodings  # shared ClientInit forced, input gone


def test_a_view_only_session_refuses_unknown_client_messages():
    f = ViewOnlyFilter()
    with pytest.raises(RfbError):
        f.feed(b"\x01" + bytes([99, 0, 0, 0]))
