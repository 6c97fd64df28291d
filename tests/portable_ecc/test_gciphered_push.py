# Pushes protected by general-ciphering on the portable core (runs under
# MicroPython too): a Push setup whose params carry a protection sends its
# DataNotification as DD with an identified key or a key agreed by the
# Static Unified Model (small test scalars: cheap ECDH); the receiver's side
# opens it with gcipher.unseal and the same KDF.
# (tests/cpython/test_push_general_ciphering.py opens them with
# `cryptography` and through `dlms-micro listen`.)

from dlms_micro.app import notify
from dlms_micro.cosem.push import PUSH_SETUP, PushState
from dlms_micro.cosem.register import REGISTER
from dlms_micro.meter import Meter, Role
from dlms_micro.security import ecc, gcipher, suite12
from dlms_micro.security import keys as ks
from dlms_micro.security.gcm import Gcm
from test_general_ciphering import CLIENT_KA_D, CLIENT_KA_PUB, METER_KA_D, METER_KA_PUB
from test_hls_ecdsa import SERVER_D, SERVER_PUB
from test_signed_requests import ST_S, MemStorage

PUSH_LN = b"\x00\x00\x19\x09\x00\xff"
ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
HES = b"HES\x00\x00\x00\x00\x07"
EK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))


def meter(protection):
    objects = ((40, PUSH_LN, 1, 0), (3, ENERGY_LN, 2, 0))
    param = (objects, 900, 32, 2, protection)
    table = (
        (3, 0, ENERGY_LN, REGISTER, 0, ((b"\x01\x01\x01", b"\x01"),), (0, 30)),
        (40, 0, PUSH_LN, PUSH_SETUP, 1, ((b"\x01" * 7, b"\x01"),), param),
    )
    m = Meter(table, (Role(16, security_suite=1),), [12345, PushState(param)])
    m.keys = ks.KeyStore(MemStorage(), ST_S, ek=EK, ak=AK, policy=0x60)
    m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {},
                                ecc.KeyPair(ecc.P256, METER_KA_D, METER_KA_PUB), {HES: CLIENT_KA_PUB})
    return m, table[1]


def pushed(m, obj):
    n = notify.Notifier(m)
    buf = bytearray(300)
    end = n.encode(obj, buf, 8, len(buf))
    assert end > 0 and n.start == 8 and n.protected
    return n, gcipher.General().parse(buf, 8, end)


def check_plain(plain):
    assert plain[0] == 0x0F and plain.endswith(b"\x09\x06" + PUSH_LN + b"\x06\x00\x00\x30\x39")


def test_identified_key():
    m, obj = meter((notify.GC_IDENTIFIED, 1, HES))
    n, g = pushed(m, obj)
    assert g.key_info == gcipher.KEY_INFO_IDENTIFIED and g.key_id == 0
    assert (g.tid, g.originator, g.recipient) == (b"\x00\x00\x00\x01", ST_S, HES)
    assert g.content[0] == 0x31  # authenticated and encrypted (the policy's 0x60), suite 1
    check_plain(gcipher.unseal(Gcm(), EK, AK, g))
    assert gcipher.unseal(Gcm(), AK, AK, g) is None  # another key: nothing


def test_agreed_key_static_unified():
    m, obj = meter((notify.GC_AGREED, 1, HES))
    n, g = pushed(m, obj)
    assert g.key_info == gcipher.KEY_INFO_AGREED and g.params == b"\x02" and g.key_data == b""
    z = ecc.ecdh(ecc.P256, CLIENT_KA_D, METER_KA_PUB)  # the receiver's side
    key = gcipher.derive(1, gcipher.SCHEME_STATIC_UNIFIED, z, ST_S, HES, g.tid)
    check_plain(gcipher.unseal(Gcm(), key, AK, g))


def test_unknown_recipient_refused():
    m, obj = meter((notify.GC_AGREED, 1, b"NOBODY\x00\x01"))
    lines = []
    m.log = lines.append
    buf = bytearray(300)
    assert notify.Notifier(m).encode(obj, buf, 8, len(buf)) == -1
    assert lines == ["push: general-ciphering refused, not sent: no key agreement public key for the recipient "
                     "4E4F424F44590001"]
