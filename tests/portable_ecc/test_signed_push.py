# Signed pushes (issue 17): with meter.push_signed and the meter's signing
# key (suite 1, P-256), the DataNotification goes out inside general-signing
# (transaction-id = its invoke id, originator = the meter's system title),
# signed with the meter's key; ciphered first when the policy asks for it.

import sys

from dlms_micro.app import notify
from dlms_micro.cosem.push import PUSH_SETUP, PushState
from dlms_micro.cosem.register import REGISTER
from dlms_micro.meter import Meter, Role
from dlms_micro.security import ecc, signing, suite12
from dlms_micro.security import keys as ks
from test_hls_ecdsa import SERVER_D, SERVER_PUB
from test_signed_requests import ST_S, MemStorage

PUSH_LN = b"\x00\x00\x19\x09\x00\xff"
ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"


def meter(policy=0):
    objects = ((40, PUSH_LN, 1, 0), (3, ENERGY_LN, 2, 0))
    param = (objects, 900, 32, 2)
    table = (
        (3, 0, ENERGY_LN, REGISTER, 0, ((b"\x01\x01\x01", b"\x01"),), (0, 30)),
        (40, 0, PUSH_LN, PUSH_SETUP, 1, ((b"\x01" * 7, b"\x01"),), param),
    )
    m = Meter(table, (Role(16, security_suite=1),), [12345, PushState(param)])
    m.keys = ks.KeyStore(MemStorage(), ST_S, ek=bytes(16), ak=bytes(16), policy=policy)
    m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB))
    m.push_signed = True
    return m, table[1]


def test_signed_push():
    m, obj = meter()
    n = notify.Notifier(m)
    buf = bytearray(300)
    end = n.encode(obj, buf, 8, len(buf))
    assert end > 0 and n.start == 8
    r = signing.Signed().parse(buf, 8, end)
    assert r.field(0) == b"\x00\x00\x00\x01" and r.field(1) == ST_S and r.field(2) == b""
    content = r.field(5)
    assert content[0] == 0x0F and content.endswith(b"\x09\x06" + PUSH_LN + b"\x06\x00\x00\x30\x39")
    if sys.implementation.name != "micropython":
        assert r.verify(ecc.P256, SERVER_PUB)


def test_signed_and_ciphered_push():
    m, obj = meter(policy=0x60)
    n = notify.Notifier(m)
    buf = bytearray(300)
    end = n.encode(obj, buf, 8, len(buf))
    r = signing.Signed().parse(buf, 8, end)
    content = r.field(5)
    assert content[0] == 0xDB and content[2:10] == ST_S and content[11] == 0x30  # general-glo, A+E


def test_push_too_long_to_sign_is_not_sent():
    m, obj = meter()
    lines = []
    m.log = lines.append
    n = notify.Notifier(m)
    buf = bytearray(60)
    assert n.encode(obj, buf, 8, len(buf)) == -1
    assert lines[0].startswith("push: not signed, not sent")
