# Pushes protected by general-ciphering (DD): a Push setup whose protection
# says so (a meter definition's push-setup "protection") sends its
# DataNotification with an identified key (the global unicast key; suite 2:
# the 32-byte one) or with a key agreed by the Static Unified Model with the
# destination's key agreement key. Opened here with `cryptography` only
# (AES-GCM, ECDH, ConcatKDFHash), and by `dlms-micro listen` (PushListener)
# over real TCP; a replay, an unknown recipient, missing keys refused with a
# log line; the definition's errors named by place.

import argparse
import asyncio
import copy
import os
import sys

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "portable"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "portable_ecc"))

from dlms_micro import axdr  # noqa: E402
from dlms_micro.app import notify  # noqa: E402
from dlms_micro.link import wrapper  # noqa: E402
from dlms_micro.meterdef import build  # noqa: E402
from dlms_micro.security import ecc, gcipher, suite12  # noqa: E402
from dlms_micro.security import keys as ks  # noqa: E402
from dlms_micro_cpython.meterdef import DefinitionError, compile_definition  # noqa: E402
from dlms_micro_cpython.push import PushListener, add_listen_parser  # noqa: E402
import test_general_ciphering_vectors as gv  # noqa: E402  (AES-GCM with a 12-byte tag by `cryptography`)
from test_cosem_push import AK, EK, OBJECTS, T0, TITLE, MemStorage, expected_plain, make_meter  # noqa: E402
from test_general_ciphering import CLIENT_KA_D, CLIENT_KA_PUB, METER_KA_D, METER_KA_PUB  # noqa: E402
from test_hls_ecdsa import SERVER_D, SERVER_PUB  # noqa: E402

HES = b"HES\x00\x00\x00\x00\x07"
ALG_128 = bytes.fromhex("60857405080300")
ALG_256 = bytes.fromhex("60857405080301")
EK2 = bytes(range(0x80, 0xA0))
AK2 = bytes(range(0xA0, 0xC0))


def meter(protection, policy=0x60, signing=True, suite2=False):
    m, obj = make_meter(protection=protection)
    m.keys = ks.KeyStore(MemStorage(), TITLE, ek=EK, ak=AK, policy=policy)
    if signing:
        m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {},
                                    ecc.KeyPair(ecc.P256, METER_KA_D, METER_KA_PUB), {HES: CLIENT_KA_PUB})
    if suite2:
        m.suite2_keys = suite12.Suite2Keys(m.keys, EK2, AK2)
    return m, obj


def encode(m, obj):
    n = notify.Notifier(m)
    buf = bytearray(400)
    end = n.encode(obj, buf, 8, len(buf), T0)
    assert end > 0, m.log.lines
    return n, bytes(buf[n.start : end])


def open_with_cryptography(apdu, key, ak):
    # the fields parsed by hand (A-XDR lengths < 0x80 here) and AES-GCM
    assert apdu[0] == 0xDD
    p, f = 1, []
    for _ in range(5):
        f.append(apdu[p + 1 : p + 1 + apdu[p]])
        p += 1 + apdu[p]
    ki_start = p
    assert apdu[p] == 1
    if apdu[p + 1] == 0:
        p += 3
    else:
        assert apdu[p + 1] == 2
        p += 2
        p += 1 + apdu[p]
        p += 1 + apdu[p]
    ki = apdu[ki_start:p]
    n = apdu[p]
    if n == 0x81:
        n, p = apdu[p + 1], p + 1
    ct = apdu[p + 1 : p + 1 + n]
    assert p + 1 + n == len(apdu)
    tid, orig, recip, dtm, other = f
    sc = ct[0]
    plain = gv.gcm_open(key, orig + ct[1:5], bytes([sc]) + ak + tid + orig + recip + dtm + other, ct[5:-12], ct[-12:])
    return f, ki, sc, plain


def test_identified_key_suite0():
    m, obj = meter((notify.GC_IDENTIFIED, 0, b""), signing=False)
    n, apdu = encode(m, obj)
    assert n.protected and n.start == 8
    f, ki, sc, plain = open_with_cryptography(apdu, EK, AK)
    assert f[0] == b"\x00\x00\x00\x01" and f[1] == TITLE and f[2] == b""  # tid: the transmit IC
    assert ki == b"\x01\x00\x00" and sc == 0x30
    assert plain == expected_plain(1)
    # the next one: the next counter, never the same IV
    f2 = open_with_cryptography(encode(m, obj)[1], EK, AK)[0]
    assert f2[0] == b"\x00\x00\x00\x02"


def test_identified_key_suite2_and_level_from_policy():
    m, obj = meter((notify.GC_IDENTIFIED, 2, HES), policy=0x60, signing=False, suite2=True)
    f, ki, sc, plain = open_with_cryptography(encode(m, obj)[1], EK2, AK2)
    assert sc == 0x32 and f[2] == HES and plain == expected_plain(1)


def agreed_key(tid, suite=1):
    z = ec.derive_private_key(int.from_bytes(CLIENT_KA_D, "big"), ec.SECP256R1()).exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + METER_KA_PUB))
    return ConcatKDFHash(hashes.SHA256(), 16, ALG_128 + TITLE + HES + tid).derive(z)


def test_agreed_key_static_unified_suite1():
    m, obj = meter((notify.GC_AGREED, 1, HES))
    n, apdu = encode(m, obj)
    f = open_with_cryptography(apdu, agreed_key(b"\x00\x00\x00\x01"), AK)
    assert f[1] == b"\x01\x02\x01\x02\x00" and f[2] == 0x31 and f[3] == expected_plain(1)
    assert n._gc_cache[0] == CLIENT_KA_PUB  # Z kept: one ECDH per recipient key
    apdu2 = encode_again(n, obj)
    assert open_with_cryptography(apdu2, agreed_key(b"\x00\x00\x00\x02"), AK)[3] == expected_plain(2)


def encode_again(n, obj):
    buf = bytearray(400)
    end = n.encode(obj, buf, 8, len(buf), T0)
    return bytes(buf[n.start : end])


@pytest.mark.parametrize("prot,kw,line", [
    ((notify.GC_AGREED, 1, b"OTHER\x00\x00\x01"), {},
     "push: general-ciphering refused, not sent: no key agreement public key for the recipient 4F54484552000001"),
    ((notify.GC_AGREED, 1, HES), {"signing": False},
     "push: general-ciphering refused, not sent: no suite 1 key agreement key of the meter"),
    ((notify.GC_IDENTIFIED, 2, b""), {}, "push: general-ciphering refused, not sent: no security suite 2 keys"),
    ((notify.GC_AGREED, 0, HES), {}, "push: general-ciphering refused, not sent: agreed key in security suite 0"),
])
def test_refused_with_a_log_line(prot, kw, line):
    m, obj = meter(prot, **kw)
    buf = bytearray(400)
    assert notify.Notifier(m).encode(obj, buf, 8, len(buf), T0) == -1
    assert m.log.lines == [line]
    assert EK.hex() not in line and METER_KA_D.hex() not in line


def test_too_small_buffer_refused():
    m, obj = meter((notify.GC_IDENTIFIED, 0, b""))
    buf = bytearray(100)
    assert notify.Notifier(m).encode(obj, buf, 8, len(buf), T0) == -1
    assert m.log.lines == ["push: the notification does not fit its buffer, not sent"]


# ------------------------------------------------------------ the listener


def listen(frames, **keys):
    async def main():
        lines = []
        lst = await PushListener("127.0.0.1", 0, out=lines.append, **keys).start()
        try:
            for fr in frames:
                _r, w = await asyncio.open_connection("127.0.0.1", lst.port)
                w.write(fr)
                await w.drain()
                w.close()
            for _ in range(500):
                if len(lines) >= len(frames):
                    break
                await asyncio.sleep(0.01)
        finally:
            await lst.stop()
        return lines, lst.received

    return asyncio.run(main())


def framed(apdu):
    buf = bytearray(8) + apdu
    h = wrapper.push_frame(buf, 8, len(buf), 1)
    return bytes(buf[h:])


def test_listener_opens_agreed_and_identified_and_refuses_a_replay():
    m, obj = meter((notify.GC_AGREED, 1, HES))
    n, a1 = encode(m, obj)
    a2 = encode_again(n, obj)
    lines, got = listen([framed(a1), framed(a2), framed(a1)], ak=AK, agreement_key=CLIENT_KA_D,
                        meter_agreement_keys={TITLE: METER_KA_PUB})
    assert [x.invoke_id for x in got] == [1, 2]
    assert got[0].protection == ("general-ciphering SC 0x31 IC 1 agreed key (static unified model) system title "
                                 "444D490000BC614E")
    assert got[0].body[0] == axdr.STRUCTURE
    assert "general-ciphering IC 1 replayed (last 2 from 444D490000BC614E)" in lines[2]
    m, obj = meter((notify.GC_IDENTIFIED, 0, b""), signing=False)
    lines, got = listen([framed(encode(m, obj)[1])], ek=EK, ak=AK)
    assert got[0].protection == "general-ciphering SC 0x30 IC 1 identified key (global unicast) system title " \
                                "444D490000BC614E"


def test_listener_without_the_agreement_keys_says_so():
    m, obj = meter((notify.GC_AGREED, 1, HES))
    lines, got = listen([framed(encode(m, obj)[1])], ek=EK, ak=AK)
    assert got == [] and "agreed key: needs --agreement-key and --meter-agreement-key 444D490000BC614E=" in lines[0]
    lines, got = listen([framed(encode(m, obj)[1])])
    assert got == [] and "no keys given" in lines[0]


def test_listen_command_key_options():
    p = argparse.ArgumentParser(prog="dlms-micro")
    add_listen_parser(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(["listen", "--ek", EK2.hex(), "--ak", AK2.hex(), "--agreement-key", CLIENT_KA_D.hex(),
                      "--meter-agreement-key", "%s=%s" % (TITLE.hex(), METER_KA_PUB.hex())])
    assert (a.ek, a.ak, a.agreement_key) == (EK2, AK2, CLIENT_KA_D)
    assert a.meter_agreement_key == [(TITLE, METER_KA_PUB)]
    for bad in (["--agreement-key", "00" * 20], ["--meter-agreement-key", "00" * 8], ["--ek", "00" * 24]):
        with pytest.raises(SystemExit):
            p.parse_args(["listen"] + bad)


# ------------------------------------------------------- meter definitions

DEFINITION = {
    "meter": "dlms-micro/1", "name": "DMI0000012345678", "serial_number": "12345678",
    "associations": {"ecdsa": {"client_sap": 1, "authentication": "high-ecdsa", "security_suite": 1,
                               "security_policy": "authenticated-encrypted"}},
    "objects": [
        {"class": "register", "obis": "1.0.1.8.0.255", "type": "double-long-unsigned", "value": 12345, "unit": "Wh"},
        {"class": "push-setup", "obis": "0.0.25.9.0.255",
         "push_object_list": ["0.0.25.9.0.255:1", "1.0.1.8.0.255:2"],
         "protection": {"general_ciphering": "agreed", "security_suite": 1,
                        "recipient_system_title": HES.hex()}},
    ],
}


def test_definition_push_protection_compiles_and_sends():
    c = compile_definition(copy.deepcopy(DEFINITION))
    m = build.build(c)
    obj = [e for e in m.table if e[0] == 40][0]
    assert obj[6][4] == (2, 1, HES)
    m.keys = ks.KeyStore(MemStorage(), b"DMI\x00\x00\xbc\x61\x4e", ek=EK, ak=AK, policy=0x60)
    m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {},
                                ecc.KeyPair(ecc.P256, METER_KA_D, METER_KA_PUB), {HES: CLIENT_KA_PUB})
    buf = bytearray(400)
    n = notify.Notifier(m)
    end = n.encode(obj, buf, 8, len(buf))
    z = ec.derive_private_key(int.from_bytes(CLIENT_KA_D, "big"), ec.SECP256R1()).exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + METER_KA_PUB))
    key = ConcatKDFHash(hashes.SHA256(), 16, ALG_128 + b"DMI\x00\x00\xbc\x61\x4e" + HES + b"\x00\x00\x00\x01").derive(z)
    plain = open_with_cryptography(bytes(buf[n.start : end]), key, AK)[3]
    assert plain[0] == 0x0F and plain.endswith(bytes.fromhex("0600003039"))
    # without protection: the form definitions had before
    d = copy.deepcopy(DEFINITION)
    del d["objects"][1]["protection"]
    assert len([e for e in build.build(compile_definition(d)).table if e[0] == 40][0][6]) == 4


@pytest.mark.parametrize("prot,fault", [
    ({"general_ciphering": "wrapped"}, 'protection.general_ciphering: "identified" or "agreed", not \'wrapped\''),
    ({"general_ciphering": "agreed", "security_suite": 0, "recipient_system_title": HES.hex()},
     "protection.security_suite: an agreed key needs security suite 1 or 2"),
    ({"general_ciphering": "agreed", "security_suite": 1}, "protection.recipient_system_title: required with an agreed key"),
    ({"general_ciphering": "identified", "security_suite": 2},
     "protection.security_suite: 2: no association of the definition uses suite 2"),
    ({"general_ciphering": "identified", "recipient_system_title": "0011"},
     "protection.recipient_system_title: 8 bytes (16 hex digits), not 2"),
    ({"general_ciphering": "identified", "key": 1}, "protection: an object"),
    ({"general_ciphering": ["agreed"]}, "protection.general_ciphering: \"identified\" or \"agreed\", not ['agreed']"),
    ({"general_ciphering": "identified", "recipient_system_title": [1]}, "protection.recipient_system_title: "),
    ("agreed", "protection: an object"),
])
def test_definition_push_protection_errors_named_by_place(prot, fault):
    d = copy.deepcopy(DEFINITION)
    d["objects"][1]["protection"] = prot
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d)
    assert "objects[1] (push-setup 0.0.25.9.0.255): " + fault in str(ei.value), str(ei.value)


# ---------------------------------------- `api.serve` to `dlms-micro listen`


def test_served_definition_pushes_to_the_listener():
    # the definition's push (agreed key, every second) from a meter served
    # with a key file's agreement keys, opened by the listener with the
    # head-end's private key and the meter's public one
    from dlms_micro_cpython import api

    async def main():
        lines = []
        lst = await PushListener("127.0.0.1", 0, out=lines.append, ak=AK, agreement_key=CLIENT_KA_D,
                                 meter_agreement_keys={b"DMI\x00\x00\xbc\x61\x4e": METER_KA_PUB}).start()
        d = copy.deepcopy(DEFINITION)
        d["objects"][1].update({"period": 1, "send_destination_and_method": {
            "destination": "127.0.0.1:%d" % lst.port}})
        keys = {"ek": EK, "ak": AK, "kek": bytes(16), "signing_keys": {1: SERVER_D},
                "agreement_keys": {1: METER_KA_D}, "client_agreement_keys": {HES: CLIENT_KA_PUB}}
        try:
            with api.serve(d, keys=keys):
                for _ in range(500):
                    if lst.received:
                        break
                    await asyncio.sleep(0.01)
        finally:
            await lst.stop()
        return lines, lst.received

    lines, got = asyncio.run(main())
    assert got, lines
    assert got[0].protection.startswith("general-ciphering SC 0x31 IC ") and "agreed key" in got[0].protection
    assert got[0].body[1][1] == (axdr.DOUBLE_LONG_UNSIGNED, 12345)
