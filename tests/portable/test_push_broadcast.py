# Pushes under the global broadcast key (issue 17): with meter.push_broadcast
# set, a protected DataNotification goes out as general-glo-ciphering with
# SC's broadcast bit (0x40 | 0x30 = 0x70) and is ciphered with the broadcast
# key (key id 1), so that every receiver given that key opens it; no
# broadcast key: not sent, a log line. Runs under pytest and MicroPython.

from dlms_micro.app import notify
from dlms_micro.security import keys as ks
from dlms_micro.security.gcm import Gcm
from keystore_support import AK, EK, TITLE, MemStorage
from support import unhex
from test_cosem_push import T0, expected_plain, make_meter

BK = unhex("B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF")


def broadcast_meter(bk=BK):
    m, obj = make_meter()
    m.keys = ks.KeyStore(MemStorage(), TITLE, ek=EK, bk=bk, ak=AK, policy=0x60)
    m.push_broadcast = True
    return m, obj


def test_broadcast_push_opens_with_the_broadcast_key_only():
    m, obj = broadcast_meter()
    n = notify.Notifier(m)
    buf = bytearray(8 + notify.HEADER_ROOM + 128 + notify.TRAILER)
    end = n.encode(obj, buf, 8, len(buf), T0)
    apdu = bytearray(buf[n.start : end])
    assert apdu[0:10] == unhex("DB 08") + TITLE
    assert apdu[11:16] == unhex("70 00000001")  # broadcast, authenticated, encrypted; IC 1
    # the receiver: IV = the meter's title || IC, AAD = SC || AK, key BK
    iv = bytes(TITLE) + bytes(apdu[12:16])
    aad = bytes([0x70]) + AK
    e = len(apdu) - 12
    wrong = Gcm()
    wrong.set_key(EK)
    assert not wrong.decrypt(iv, 0, aad, 0, 17, bytearray(apdu), 16, e, apdu, e)
    g = Gcm()
    g.set_key(BK)
    assert g.decrypt(iv, 0, aad, 0, 17, apdu, 16, e, apdu, e)
    assert bytes(apdu[16:e]) == expected_plain(1)


def test_no_broadcast_key_no_push():
    m, obj = broadcast_meter(bk=None)
    lines = []
    m.log = lines.append
    n = notify.Notifier(m)
    buf = bytearray(200)
    assert n.encode(obj, buf, 8, len(buf), T0) == -1
    assert lines == ["push: the notification could not be protected, not sent"]
