# Security suite 0 with real clients: gurux-dlms (glo-ciphering) and
# dlms-cosem (general-glo-ciphering) associate as client SAP 1 with HLS-GMAC
# and authenticated + encrypted APDUs. Association, GET/SET/ACTION and
# release run ciphered in the other interop modules (their SAP 1 cases);
# here: what a head-end sees of the security (titles, Security setup, the
# invocation counter), wrong keys, replayed and tampered APDUs, key_transfer
# through a client's API, and counters and keys that survive a restart.

import time

import pytest
from interop_expect import ENERGY_IMPORT, LDN, LDN_VALUE, METER_TITLE, SECURITY_POLICY
from interop_peers import (
    COSEM_TITLE,
    DEMO_KEK,
    DEMO_KEYS,
    GURUX_TITLE,
    HDLC_TCP,
    INVOCATION_COUNTER,
    IO_TIMEOUT,
    SECURITY_SETUP,
    TRANSPORTS,
    WRAPPER,
    CosemPeer,
    GuruxPeer,
    as_bytes,
    read_invocation_counter_cosem,
    read_invocation_counter_gurux,
)

all_transports = pytest.mark.parametrize("transport", TRANSPORTS)
tcp_transports = pytest.mark.parametrize("transport", (WRAPPER, HDLC_TCP))

NEW_KEYS = {
    "ek": bytes.fromhex("404142434445464748494A4B4C4D4E4F"),
    "ak": bytes.fromhex("606162636465666768696A6B6C6D6E6F"),
    "kek": DEMO_KEK,
}
WRONG_EK = dict(DEMO_KEYS, ek=bytes(16))
WRONG_AK = dict(DEMO_KEYS, ak=bytes(16))

# exception-response (Green Book): D8 state-error service-error
INVOCATION_COUNTER_ERROR = b"\xd8\x01\x06"  # + the lowest acceptable counter (4 bytes)
DECIPHERING_ERROR = b"\xd8\x01\x05"
OPERATION_NOT_POSSIBLE = b"\xd8\x01\x01"


@pytest.fixture
def peers():
    made = []

    def keep(p):
        made.append(p)
        return p

    yield keep
    for p in made:
        try:
            p.close()
        except Exception:
            pass


# ------------------------------------------------------------ helpers


def gurux(peers, meter, transport, **kw):
    p = peers(GuruxPeer(meter, transport, sap=1, **kw))
    try:
        p.connect()
    except Exception:
        print(p.trace_text())
        raise
    return p


def cosem(peers, meter, transport, **kw):
    p = peers(CosemPeer(meter, transport, sap=1, **kw))
    p.connect()
    p.associate()
    return p


def gurux_read_ldn(p):
    from gurux_dlms.objects import GXDLMSData

    o = GXDLMSData(LDN)
    p.read(o, 2)
    return as_bytes(o.value)


def cosem_read_ldn(p):
    data = p.get(1, LDN, 2)
    assert data == bytes([9, len(LDN_VALUE)]) + LDN_VALUE
    return LDN_VALUE


def wrapper_exchange(media, frame):
    # Send one wrapper frame as it is; the APDU of the meter's answer.
    media.send(frame)
    deadline = time.monotonic() + IO_TIMEOUT
    got = b""
    while len(got) < 8 or len(got) < 8 + int.from_bytes(got[6:8], "big"):
        got += media.recv(deadline)
    return got[8 : 8 + int.from_bytes(got[6:8], "big")]


def wrapper_frame(apdu, client=1, server=1):
    return bytes([0, 1, 0, client, 0, server]) + len(apdu).to_bytes(2, "big") + apdu


def ic_of(apdu):
    # the invocation counter of a glo-ciphered APDU (tag, 1-byte length, SC, IC)
    # or of a general-glo-ciphering one (tag, 08, title, length, SC, IC)
    if apdu[0] == 0xDB:
        p = 10 + (1 if apdu[10] < 0x80 else 1 + (apdu[10] & 0x7F))
        return int.from_bytes(apdu[p + 1 : p + 5], "big")
    p = 1 + (1 if apdu[1] < 0x80 else 1 + (apdu[1] & 0x7F))
    return int.from_bytes(apdu[p + 1 : p + 5], "big")


def assert_counter_refusal(answer, replayed_ic):
    assert answer[:3] == INVOCATION_COUNTER_ERROR, answer.hex()
    assert len(answer) == 7, answer.hex()
    assert int.from_bytes(answer[3:7], "big") > replayed_ic  # the lowest acceptable one


def restart(svc, data_dir, **kw):
    # Stop a meter and start a new one on the same data directory (what
    # `dlms-micro serve --data DIR` does after a restart).
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    hes = None
    if svc is not None:
        hes = getattr(svc, "hes_counters", None)  # the head-end remembers
        svc.stop()
    new = ThreadedService(DemoMeter(storage=FileStorage(str(data_dir)), seed=2, **kw), host="127.0.0.1", wrapper_port=0, hdlc_port=0)
    if hes is not None:
        new.hes_counters = hes
    return new.start()


@pytest.fixture
def own_meter(tmp_path):
    # A meter of its own (fresh data directory) for tests that change keys
    # or restart it; .data_dir says where its state lives.
    box = {"svc": restart(None, tmp_path)}

    class Own:
        data_dir = tmp_path

        @property
        def svc(self):
            return box["svc"]

        def restart(self):
            box["svc"] = restart(box["svc"], tmp_path)
            return box["svc"]

    yield Own()
    box["svc"].stop()


# -------------------------------------------------- what a head-end sees


@all_transports
def test_gurux_sees_the_meter_title_and_every_request_goes_ciphered(meter, peers, transport):
    from gurux_dlms.enums import Authentication

    p = gurux(peers, meter, transport)
    assert p.client.authentication == Authentication.HIGH_GMAC
    assert bytes(p.client.sourceSystemTitle) == METER_TITLE
    p.trace.clear()
    assert gurux_read_ldn(p) == LDN_VALUE
    tx = [bytes.fromhex(h) for d, h in p.trace if d == "tx"]
    rx = [bytes.fromhex(h) for d, h in p.trace if d == "rx"]
    if transport == WRAPPER:
        assert [m[8] for m in tx] == [0xC8], p.trace_text()  # glo-get-request
        assert [m[8] for m in rx] == [0xCC], p.trace_text()  # glo-get-response
    else:
        assert b"\xe6\xe6\x00\xc8" in tx[0] and b"\xe6\xe7\x00\xcc" in b"".join(rx), p.trace_text()
    p.release()
    p.disconnect()


@all_transports
def test_dlms_cosem_sees_the_meter_title_and_every_request_goes_ciphered(meter, peers, transport):
    p = cosem(peers, meter, transport)
    assert bytes(p.client.dlms_connection.meter_system_title) == METER_TITLE
    p.sent.clear()
    cosem_read_ldn(p)
    assert [a[0] for a in p.sent] == [0xDB] and p.sent[0][2:10] == COSEM_TITLE  # general-glo-ciphering
    p.release()
    p.disconnect()


@tcp_transports
def test_security_setup_as_gurux_reads_it(meter, peers, transport):
    from gurux_dlms.objects import GXDLMSSecuritySetup

    p = gurux(peers, meter, transport)
    ss = GXDLMSSecuritySetup(SECURITY_SETUP)
    assert int(p.read(ss, 2)) == SECURITY_POLICY
    assert int(p.read(ss, 3)) == 0  # suite 0
    assert as_bytes(p.read(ss, 4)) == GURUX_TITLE  # this association's client
    assert as_bytes(p.read(ss, 5)) == METER_TITLE
    p.release()
    p.disconnect()


@tcp_transports
def test_security_setup_as_dlms_cosem_reads_it(meter, peers, transport):
    p = cosem(peers, meter, transport)
    assert p.get(64, SECURITY_SETUP, 2) == bytes([0x16, SECURITY_POLICY])
    assert p.get(64, SECURITY_SETUP, 3) == b"\x16\x00"
    assert p.get(64, SECURITY_SETUP, 4) == b"\x09\x08" + COSEM_TITLE
    assert p.get(64, SECURITY_SETUP, 5) == b"\x09\x08" + METER_TITLE
    p.release()
    p.disconnect()


@all_transports
def test_head_end_reads_the_invocation_counter_as_public_client_then_associates_above_it(meter, peers, transport):
    # Three sessions per client, each starting from the counter read as the
    # public client just before (no counter remembered between them).
    seen = []
    for _ in range(3):
        seen.append(read_invocation_counter_gurux(meter, transport))
        p = gurux(peers, meter, transport, ic_from_meter=True)
        assert gurux_read_ldn(p) == LDN_VALUE
        p.release()
        p.disconnect()
        p.close()
        seen.append(read_invocation_counter_cosem(meter, transport))
        q = cosem(peers, meter, transport, ic_from_meter=True)
        cosem_read_ldn(q)
        q.release()
        q.disconnect()
    # the meter's counter only grows: each ciphered session used some
    assert all(b > a for a, b in zip(seen, seen[1:])), seen


# ------------------------------------------------------------ wrong keys


@tcp_transports
@pytest.mark.parametrize("keys", (WRONG_EK, WRONG_AK), ids=("wrong-EK", "wrong-AK"))
def test_gurux_with_a_wrong_key_is_refused_and_the_right_keys_then_work(meter, peers, transport, keys):
    bad = peers(GuruxPeer(meter, transport, sap=1, keys=keys))
    with pytest.raises(Exception) as ei:
        bad.connect()
    assert "reject" in str(ei.value).lower(), repr(ei.value)
    bad.close()
    good = gurux(peers, meter, transport)
    assert gurux_read_ldn(good) == LDN_VALUE
    good.release()
    good.disconnect()


@tcp_transports
@pytest.mark.parametrize("keys", (WRONG_EK, WRONG_AK), ids=("wrong-EK", "wrong-AK"))
def test_dlms_cosem_with_a_wrong_key_is_refused_and_the_right_keys_then_work(meter, peers, transport, keys):
    bad = peers(CosemPeer(meter, transport, sap=1, keys=keys))
    bad.connect()
    with pytest.raises(Exception):
        bad.associate()
    bad.close()
    good = cosem(peers, meter, transport)
    cosem_read_ldn(good)
    good.release()
    good.disconnect()


# ------------------------------------------------- replay and tampering


def test_gurux_replayed_get_is_refused_and_the_association_goes_on(meter, peers):
    # The ciphered GET exactly as gurux put it on the wire (wrapper frame),
    # sent again: exception-response invocation-counter-error; then gurux
    # goes on in the same association.
    p = gurux(peers, meter, WRAPPER)
    p.trace.clear()
    assert gurux_read_ldn(p) == LDN_VALUE
    frame = p.sent_apdus()[0]
    assert frame[8] == 0xC8
    answer = wrapper_exchange(p.media, frame)
    assert_counter_refusal(answer, ic_of(frame[8:]))
    assert gurux_read_ldn(p) == LDN_VALUE  # the association goes on
    assert wrapper_exchange(p.media, frame)[:3] == INVOCATION_COUNTER_ERROR  # still refused
    p.release()
    p.disconnect()
    # and in the next association too (the counter is the client title's)
    q = gurux(peers, meter, WRAPPER)
    assert_counter_refusal(wrapper_exchange(q.media, frame), ic_of(frame[8:]))
    assert gurux_read_ldn(q) == LDN_VALUE
    q.release()


@all_transports
def test_dlms_cosem_replayed_get_is_refused_and_the_association_goes_on(meter, peers, transport):
    # The general-glo-ciphering GET dlms-cosem handed its transport, handed
    # to it again (on HDLC framed anew, so the link's sequence stays right).
    p = cosem(peers, meter, transport)
    p.sent.clear()
    cosem_read_ldn(p)
    apdu = p.sent[0]
    assert apdu[0] == 0xDB
    answer = bytes(p.replay(apdu))
    assert_counter_refusal(answer, ic_of(apdu))
    cosem_read_ldn(p)  # the association goes on
    p.release()
    p.disconnect()


def test_tampered_request_is_refused_and_the_association_goes_on(meter, peers):
    # gurux builds its next GET; one ciphertext bit flipped: deciphering
    # error (D8 01 05). Its counter was not accepted, and gurux's next
    # request (one counter further) is served.
    from gurux_dlms.objects import GXDLMSData

    p = gurux(peers, meter, WRAPPER)
    frame = bytearray(p.client.read(GXDLMSData(LDN), 2)[0])
    frame[-13] ^= 0x01  # last ciphertext byte (the tag is the last 12)
    assert wrapper_exchange(p.media, bytes(frame))[:3] == DECIPHERING_ERROR
    assert gurux_read_ldn(p) == LDN_VALUE
    p.release()


def test_unciphered_get_in_the_ciphered_association_is_refused(meter, peers):
    # Policy 0x6C wants every request authenticated and encrypted.
    p = gurux(peers, meter, WRAPPER)
    plain_get = bytes.fromhex("C001C1" "0001" "00002A0000FF" "0200")
    assert wrapper_exchange(p.media, wrapper_frame(plain_get)) == OPERATION_NOT_POSSIBLE
    assert gurux_read_ldn(p) == LDN_VALUE
    p.release()


# ------------------------------------------------------------ key_transfer


def _gurux_key_transfer(p, keys):
    from gurux_dlms.objects import GXDLMSSecuritySetup
    from gurux_dlms.objects.enums import GlobalKeyType

    ss = GXDLMSSecuritySetup(SECURITY_SETUP)
    p.method(ss.globalKeyTransfer(p.client, DEMO_KEK, [(GlobalKeyType.UNICAST_ENCRYPTION, keys["ek"]), (GlobalKeyType.AUTHENTICATION, keys["ak"])]))


def _old_keys_refused_new_keys_work(peers, svc, transport):
    old = peers(GuruxPeer(svc, transport, sap=1))
    with pytest.raises(Exception) as ei:
        old.connect()
    assert "reject" in str(ei.value).lower(), repr(ei.value)
    old.close()
    new = gurux(peers, svc, transport, keys=NEW_KEYS)
    assert gurux_read_ldn(new) == LDN_VALUE
    new.release()
    new.disconnect()
    q = cosem(peers, svc, transport, keys=NEW_KEYS)
    cosem_read_ldn(q)
    q.release()
    q.disconnect()


@tcp_transports
def test_gurux_global_key_transfer_changes_the_keys_from_the_next_association(own_meter, peers, transport):
    p = gurux(peers, own_meter.svc, transport)
    _gurux_key_transfer(p, NEW_KEYS)
    # this association goes on with the keys it started with
    assert gurux_read_ldn(p) == LDN_VALUE
    p.release()
    p.disconnect()
    _old_keys_refused_new_keys_work(peers, own_meter.svc, transport)
    # the new keys were stored: still in force after a restart
    svc = own_meter.restart()
    _old_keys_refused_new_keys_work(peers, svc, transport)


@tcp_transports
def test_dlms_cosem_key_transfer_as_an_action_changes_the_keys(own_meter, peers, transport):
    # dlms-cosem has no key_transfer call: the keys are wrapped with its
    # aes_key_wrap and sent as Security setup method 2's parameter, array of
    # structure {key_id enum, key_wrapped octet-string}.
    from dlms_cosem.security import aes_key_wrap

    def key_data(key_id, key):
        w = aes_key_wrap(DEMO_KEK, key)
        return bytes([0x02, 0x02, 0x16, key_id, 0x09, len(w)]) + w

    p = cosem(peers, own_meter.svc, transport)
    p.action(64, SECURITY_SETUP, 2, b"\x01\x02" + key_data(0, NEW_KEYS["ek"]) + key_data(2, NEW_KEYS["ak"]))
    cosem_read_ldn(p)
    p.release()
    p.disconnect()
    _old_keys_refused_new_keys_work(peers, own_meter.svc, transport)


def test_key_transfer_with_a_wrong_kek_changes_nothing(own_meter, peers):
    from gurux_dlms.objects import GXDLMSSecuritySetup
    from gurux_dlms.objects.enums import GlobalKeyType

    p = gurux(peers, own_meter.svc, WRAPPER)
    ss = GXDLMSSecuritySetup(SECURITY_SETUP)
    with pytest.raises(Exception) as ei:
        p.method(ss.globalKeyTransfer(p.client, bytes(16), [(GlobalKeyType.UNICAST_ENCRYPTION, NEW_KEYS["ek"])]))
    assert getattr(ei.value, "code", None) == 250, repr(ei.value)  # action-result other-reason
    assert gurux_read_ldn(p) == LDN_VALUE
    p.release()
    q = gurux(peers, own_meter.svc, WRAPPER)  # the demo keys still work
    assert gurux_read_ldn(q) == LDN_VALUE
    q.release()


# ----------------------------------------------------- across a restart


def test_invocation_counters_survive_a_restart(own_meter, peers):
    from gurux_dlms.objects import GXDLMSData

    p = gurux(peers, own_meter.svc, WRAPPER)
    p.trace.clear()
    assert gurux_read_ldn(p) == LDN_VALUE
    frame = p.sent_apdus()[0]
    last_from_meter = ic_of(bytes.fromhex([h for d, h in p.trace if d == "rx"][-1])[8:])
    p.release()
    p.close()
    client_next = p.client.ciphering.invocationCounter
    svc = own_meter.restart()
    # the meter never reuses a transmit counter...
    public = peers(GuruxPeer(svc, WRAPPER, sap=16))
    public.connect()
    ic = GXDLMSData(INVOCATION_COUNTER)
    assert int(public.read(ic, 2)) > last_from_meter
    public.release()
    # ...and still knows the client's: the old GET is a replay
    q = gurux(peers, svc, WRAPPER, invocation_counter=client_next)
    assert_counter_refusal(wrapper_exchange(q.media, frame), ic_of(frame[8:]))
    assert gurux_read_ldn(q) == LDN_VALUE
    q.trace.clear()
    gurux_read_ldn(q)
    assert ic_of(bytes.fromhex([h for d, h in q.trace if d == "rx"][-1])[8:]) > last_from_meter
    q.release()
