# The protected release (issue 17): in a ciphered association an RLRQ whose
# user-information holds a protected InitiateRequest is checked as an
# AARQ's (keys, suite, counter) and answered with an RLRE carrying the
# InitiateResponse protected in the same form; a tampered or replayed one
# releases nothing (RLRE not-finished, the association goes on). A plain
# RLRQ still releases (gurux-dlms's default). Runs under pytest and
# MicroPython.

from support import unhex
from test_server_security import INITIATE, exchange, open_association
from test_security_suite0 import F_STOC

HLS_REPLY = unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)
GET = unhex("C001C1000301000108" + "00FF0200")


def rlrq(ui):
    body = unhex("800100") + bytes([0xBE, len(ui) + 2, 0x04, len(ui)]) + ui
    return bytes([0x62, len(body)]) + body


def associated():
    m, ch, c, aare = open_association()
    c.keys.tx = 1
    exchange(ch, c.protect(HLS_REPLY))
    assert ch.assoc.status == 2
    return m, ch, c


def test_protected_rlrq_answered_with_a_protected_rlre():
    m, ch, c = associated()
    rlre = exchange(ch, rlrq(c.protect(INITIATE)))
    assert rlre[0] == 0x63 and rlre[2:5] == unhex("800100")  # normal
    i = rlre.index(b"\xbe")
    ui = rlre[i + 4 :]
    assert ui[0] == 0x28  # glo-initiate-response
    plain = c.open(ui)
    assert plain[0] == 0x08 and plain[-2:] == unhex("0007")
    assert ch.assoc.status == 0


def test_tampered_protected_rlrq_releases_nothing():
    m, ch, c = associated()
    bad = bytearray(rlrq(c.protect(INITIATE)))
    bad[-3] ^= 1  # in the tag
    rlre = exchange(ch, bytes(bad))
    assert rlre == unhex("6303800101")  # not-finished, no user-information
    assert ch.assoc.status == 2
    rsp = exchange(ch, c.protect(GET))
    assert c.open(rsp) == unhex("C401C1000600003039")


def test_replayed_protected_rlrq_releases_nothing():
    m, ch, c = associated()
    old = rlrq(c.protect(INITIATE))  # made, not sent: its counter is then used
    exchange(ch, c.protect(GET))
    assert exchange(ch, old) == unhex("6303800101")
    assert ch.assoc.status == 2


def test_plain_rlrq_still_releases():
    m, ch, c = associated()
    assert exchange(ch, unhex("6203800100")) == unhex("6303800100")
    assert ch.assoc.status == 0
