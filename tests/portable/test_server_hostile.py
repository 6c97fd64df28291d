# The server under hostile and unlucky conditions (issue 18), through a whole
# channel: client invocation counters accepted before a power cut are never
# accepted again, a full table of client titles is named as such. Runs under
# pytest and MicroPython.

from dlms_micro import server
from dlms_micro.link import wrapper
from dlms_micro.meter import MECH_HLS_GMAC, Meter, Role
from dlms_micro.security import keys as ks
from dlms_micro.security import suite0
from dlms_micro.security.gcm import Gcm
from dlms_micro.security.suite0 import Suite0
from keystore_support import MemStorage
from support import unhex
from test_security_suite0 import AK, EK, F_STOC, HLS_CLIENT_TITLE, SERVER_TITLE, STOC, FakeKeys
from test_server_security import INITIATE, TABLE, aarq, exchange


def make_meter(storage, rx_slots=8, log=None, policy=0):
    keys = ks.KeyStore(storage, SERVER_TITLE, ek=EK, ak=AK, rx_slots=rx_slots, policy=policy)
    m = Meter(TABLE, (Role(1, MECH_HLS_GMAC, ciphered=True),), [12345])
    m.keys = keys
    m.random_bytes = lambda n: STOC
    return m


def channel(m, log=None):
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=512))
    if log is not None:
        ch.set_log(log.append)
    return ch


def protect(title, ic, plain):
    keys = FakeKeys(title=title, tx=ic)
    s = Suite0(keys, Gcm(tables=4))
    out = bytearray(suite0.HEADER_ROOM + len(plain) + suite0.TRAILER)
    p = suite0.HEADER_ROOM
    out[p : p + len(plain)] = plain
    end = s.protect(out, p, p + len(plain), len(out), 0x30, suite0.FORM_GLO)
    return bytes(out[s.out_start : end])


def accepted(aare):
    return unhex("A203020100") in aare


def test_hls_aarq_counter_accepted_before_a_power_cut_is_refused_after_it():
    storage = MemStorage()
    ch = channel(make_meter(storage))
    request = aarq(protect(HLS_CLIENT_TITLE, 7, INITIATE))
    assert accepted(exchange(ch, request))
    # power cut while the association is open: no release, no save
    log = []
    ch = channel(make_meter(storage), log)
    aare = exchange(ch, request)  # the same AARQ, replayed
    assert not accepted(aare)
    assert aare.endswith(suite0.AARE_DECIPHERING_ERROR)
    assert "below the lowest acceptable" in " ".join(log), log


def test_hls_reply_counter_accepted_before_a_power_cut_is_refused_after_it():
    storage = MemStorage()
    ch = channel(make_meter(storage))
    assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 0, INITIATE))))
    action = unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)
    rsp = exchange(ch, protect(HLS_CLIENT_TITLE, 1, action))
    assert rsp[0] == 0xCF and ch.assoc.status == 2
    ch = channel(make_meter(storage))  # power cut
    aare = exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 1, INITIATE)))
    assert not accepted(aare)
    # a fresh counter above the stored reservation is served
    assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 1 + ks.RX_RESERVE, INITIATE))))


def test_release_gives_the_reserved_counters_back():
    storage = MemStorage()
    ch = channel(make_meter(storage))
    assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 0, INITIATE))))
    assert exchange(ch, unhex("6200"))[0] == 0x63  # RLRE
    ch = channel(make_meter(storage))  # restart after an orderly release
    assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 1, INITIATE))))


def test_client_title_beyond_the_table_is_refused_saying_the_table_is_full():
    storage = MemStorage()
    m = make_meter(storage, rx_slots=2)
    for n in (1, 2):
        ch = channel(m)
        title = b"CLI\x00\x00\x00\x00" + bytes([n])
        assert accepted(exchange(ch, aarq(protect(title, 0, INITIATE), title)))
        ch.close()
    log = []
    ch = channel(m, log)
    third = b"CLI\x00\x00\x00\x00\x03"
    aare = exchange(ch, aarq(protect(third, 0, INITIATE), third))
    assert not accepted(aare)
    text = " ".join(log)
    assert "table of client titles" in text and "is full" in text and "2 titles" in text, log
    assert "434C490000000003" in text


def test_failed_hls_reply_counts_as_a_failed_authentication():
    m = make_meter(MemStorage())
    log = []
    ch = channel(m, log)
    ic = 0
    for n in range(3):
        assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, ic, INITIATE))))
        wrong = bytearray(unhex(F_STOC))
        wrong[-1] ^= 1
        action = unhex("C301C1000F0000280000FF0101 0911") + bytes(wrong)
        exchange(ch, protect(HLS_CLIENT_TITLE, ic + 1, action))
        assert ch.assoc.status == 0
        ic += 2
    assert m.auth_guard.failures[0] == 3 and ch.auth_failures == 3
    assert "HLS f(StoC) did not verify" in " ".join(log), log
    aare = exchange(ch, aarq(protect(HLS_CLIENT_TITLE, ic, INITIATE)))
    assert unhex("A203020102") in aare  # rejected-transient while locked out


def test_release_while_hls_is_pending_is_not_a_failed_authentication():
    m = make_meter(MemStorage())
    ch = channel(m)
    assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 0, INITIATE))))
    assert exchange(ch, unhex("6200"))[0] == 0x63
    assert m.auth_guard.total == 0


PROTECTED_REQUESTS = ks.POLICY_AUTHENTICATED_REQUEST | ks.POLICY_ENCRYPTED_REQUEST


def test_plain_initiate_request_in_the_ciphered_context_is_refused_where_the_policy_wants_protection():
    log = []
    ch = channel(make_meter(MemStorage(), policy=PROTECTED_REQUESTS), log)
    aare = exchange(ch, aarq(INITIATE))  # ciphered context, title, but a plain InitiateRequest
    assert not accepted(aare)
    assert aare.endswith(suite0.AARE_DECIPHERING_ERROR)  # answered unciphered
    assert ch.assoc.status == 0
    assert "requires protected requests" in " ".join(log), log
    # protected, the same AARQ is served
    assert accepted(exchange(ch, aarq(protect(HLS_CLIENT_TITLE, 0, INITIATE))))


def test_plain_initiate_request_in_the_ciphered_context_is_served_under_a_policy_without_protection():
    ch = channel(make_meter(MemStorage(), policy=0))
    assert accepted(exchange(ch, aarq(INITIATE)))


def test_plain_context_aarq_to_the_ciphered_association_gets_the_context_diagnostic():
    body = (
        unhex("A109060760857405080101")  # LN, no ciphering
        + unhex("8A0207808B0760857405080205")  # HLS-GMAC, no calling-AP-title
        + unhex("AC0A8008") + STOC
        + bytes([0xBE, len(INITIATE) + 2, 0x04, len(INITIATE)]) + INITIATE
    )
    log = []
    ch = channel(make_meter(MemStorage(), policy=PROTECTED_REQUESTS), log)
    aare = exchange(ch, bytes([0x60, len(body)]) + body)
    assert unhex("A203020101") in aare  # rejected-permanent
    assert unhex("A305A103020102") in aare  # application-context-name-not-supported
    assert not aare.endswith(suite0.AARE_DECIPHERING_ERROR)
    assert ch.assoc.status == 0
