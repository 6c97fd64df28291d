# Security setup (class 64 v1) over the key store, and the invocation
# counter object 0-0:43.1.0.255: encodings, security_activate only ever
# stronger, key_transfer all or nothing (RFC 3394 vectors), suite 1/2
# methods refused.

from cosem_support import act, allocated, get, get_ok, make, put
from dlms_micro.cosem import base, common
from dlms_micro.cosem.security_setup import INVOCATION_COUNTER, SECURITY_SETUP
from dlms_micro.security import keys as ks
from keystore_support import AK, CLIENT_A, EK, KEK, MemStorage, store, tx_record
from support import unhex

ALL = ((b"\x01\x01\x01\x01\x01\x01", b"\x01\x01\x01\x01\x01\x01\x01\x01"),
       (b"\x01\x01\x01\x01\x01\x01", b"\x01\x01\x01\x01\x01\x01\x01\x01"))
RO = ((b"\x01\x01", b""), (b"\x01\x01", b""))
SS_LN = b"\x00\x00\x2b\x00\x00\xff"
IC_LN = b"\x00\x00\x2b\x01\x00\xff"

# RFC 3394 section 4.1: KEK 000102..0F wraps 00112233445566778899AABBCCDDEEFF
RFC3394_KEY = unhex("00112233445566778899AABBCCDDEEFF")
RFC3394_WRAPPED = "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"
# the Green Book example keys wrapped with the same (demo) KEK
EK_WRAPPED = "935A3EB101C34ADD 025E170B46FF0DB2 3E5C2FAE8C8F8370"
AK_WRAPPED = "C498429FF0B8E698 352B17AFFAC7CA6C 708D61062E82B6D4"


def table():
    return (
        (64, 1, SS_LN, SECURITY_SETUP, -1, ALL, None),
        (1, 0, IC_LN, INVOCATION_COUNTER, -1, RO, None),
    )


def setup(storage=None, **kw):
    t = table()
    ctx = make(t, [])
    ctx.meter.keys = store(storage, **kw)
    return ctx, t[0]


def key_data(*items):
    # key_transfer parameter from (key_id, wrapped hex) pairs
    h = "01%02X" % len(items)
    for i in items:
        h += "0202 16%02X 0918 %s" % (i[0], i[1])
    return h


def test_class_shape_and_table_check():
    s = SECURITY_SETUP
    assert (s.class_id, s.version, s.attribute_count, s.method_count) == (64, 1, 6, 8)
    i = INVOCATION_COUNTER
    assert (i.class_id, i.version, i.attribute_count, i.method_count) == (1, 0, 2, 0)
    ctx, o = setup()
    common.check_table(ctx.meter)


def test_attributes():
    ctx, o = setup(policy=0x24)
    assert get_ok(ctx, o, 2) == unhex("16 24")
    assert get_ok(ctx, o, 3) == unhex("16 00")
    assert get_ok(ctx, o, 4) == unhex("09 00")  # no client system title
    ctx.assoc.client_system_title = CLIENT_A
    assert get_ok(ctx, o, 4) == unhex("09 08 434C490000000001")
    assert get_ok(ctx, o, 5) == unhex("09 08 444D490000BC614E")
    assert get_ok(ctx, o, 6) == unhex("01 00")
    assert get(ctx, o, 7)[0] == base.READ_WRITE_DENIED
    for a in (2, 3, 4, 5, 6):
        assert put(ctx, o, a, "16 6C") == base.READ_WRITE_DENIED
    assert ctx.meter.keys.configured_policy == 0x24


def test_without_a_key_store_the_object_is_unavailable():
    t = table()
    ctx = make(t, [])
    assert get(ctx, t[0], 2)[0] == base.OBJECT_UNAVAILABLE
    assert act(ctx, t[0], 1, "16 24")[0] == base.OBJECT_UNAVAILABLE
    assert act(ctx, t[0], 2, key_data((0, EK_WRAPPED)))[0] == base.OBJECT_UNAVAILABLE
    assert get(ctx, t[1], 2)[0] == base.OBJECT_UNAVAILABLE


def test_security_activate_only_strengthens():
    s = MemStorage()
    ctx, o = setup(s, policy=0x24)
    assert act(ctx, o, 1, "16 24") == (base.SUCCESS, b"")  # same: nothing stored
    assert s.puts == 0
    assert act(ctx, o, 1, "16 6C") == (base.SUCCESS, b"")
    k = ctx.meter.keys
    assert k.policy == 0x24 and k.configured_policy == 0x6C  # next association
    assert get_ok(ctx, o, 2) == unhex("16 6C")
    assert act(ctx, o, 1, "16 24")[0] == base.OTHER_REASON  # weaker
    assert act(ctx, o, 1, "16 2C")[0] == base.OTHER_REASON  # drops bit 6
    assert act(ctx, o, 1, "16 EC")[0] == base.OTHER_REASON  # signatures: no
    assert act(ctx, o, 1, "16 6D")[0] == base.OTHER_REASON  # bit 0
    assert act(ctx, o, 1, "11 6C")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 1)[0] == base.TYPE_UNMATCHED
    assert k.configured_policy == 0x6C and s.puts == 1
    k.activate_pending()
    assert store(s).policy == 0x6C


def test_security_activate_needs_the_keys_the_policy_uses():
    ctx, o = setup(ek=None, ak=None)
    assert act(ctx, o, 1, "16 04")[0] == base.OTHER_REASON  # no EK
    ctx, o = setup(ak=None)
    assert act(ctx, o, 1, "16 48")[0] == base.SUCCESS  # encryption only: EK
    assert act(ctx, o, 1, "16 6C")[0] == base.OTHER_REASON  # authentication: AK


def test_security_activate_storage_failure_is_a_hardware_fault():
    s = MemStorage()
    ctx, o = setup(s)
    s.fail = True
    assert act(ctx, o, 1, "16 24")[0] == base.HARDWARE_FAULT
    assert ctx.meter.keys.configured_policy == 0 and not ctx.meter.keys.pending


def test_key_transfer_rfc3394_vector_and_green_book_keys():
    s = MemStorage()
    ctx, o = setup(s, ek=bytes(16), ak=bytes(16))
    assert act(ctx, o, 2, key_data((1, RFC3394_WRAPPED))) == (base.SUCCESS, b"")
    k = ctx.meter.keys
    assert k.bk is None and k.pending  # from the next association
    k.activate_pending()
    assert k.bk == RFC3394_KEY
    assert act(ctx, o, 2, key_data((0, EK_WRAPPED), (2, AK_WRAPPED))) == (base.SUCCESS, b"")
    k.activate_pending()
    assert (k.ek, k.ak, k.bk, k.kek) == (EK, AK, RFC3394_KEY, KEK)
    k2 = store(s, ek=None, ak=None)  # stored
    assert (k2.ek, k2.ak, k2.bk) == (EK, AK, RFC3394_KEY)


def test_key_transfer_bad_wrap_refuses_the_whole_transfer():
    s = MemStorage()
    ctx, o = setup(s, ek=bytes(16), ak=bytes(16))
    bad = AK_WRAPPED[:-2] + "D5"  # last byte changed: integrity check fails
    assert act(ctx, o, 2, key_data((0, EK_WRAPPED), (2, bad)))[0] == base.OTHER_REASON
    k = ctx.meter.keys
    assert not k.pending and s.puts == 0
    k.activate_pending()
    assert k.ek == bytes(16) and k.ak == bytes(16)
    ctx, o = setup(s, ek=bytes(16), kek=bytes(range(15, -1, -1)))  # another KEK
    assert act(ctx, o, 2, key_data((0, EK_WRAPPED)))[0] == base.OTHER_REASON


def test_key_transfer_parameter_checks():
    ctx, o = setup()
    k = ctx.meter.keys
    ok = EK_WRAPPED
    assert act(ctx, o, 2)[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 2, "0202 1600 0918" + ok)[0] == base.TYPE_UNMATCHED  # no array
    assert act(ctx, o, 2, "0101 0202 1100 0918" + ok)[0] == base.TYPE_UNMATCHED  # id unsigned
    assert act(ctx, o, 2, "0101 0203 1600 0918" + ok + "1600")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 2, "0101 0202 1600 0A18" + ok)[0] == base.TYPE_UNMATCHED  # visible-string
    assert act(ctx, o, 2, "0100")[0] == base.OTHER_REASON  # empty
    assert act(ctx, o, 2, key_data((0, ok), (1, ok), (2, ok), (3, ok), (0, ok)))[0] == base.OTHER_REASON
    assert act(ctx, o, 2, key_data((4, ok)))[0] == base.OTHER_REASON  # no such key
    assert act(ctx, o, 2, key_data((0, ok), (0, ok)))[0] == base.OTHER_REASON  # twice
    assert act(ctx, o, 2, "0101 0202 1600 0910" + ok[:-16])[0] == base.OTHER_REASON  # 16 bytes
    assert not k.pending
    ctx, o = setup(kek=None)
    assert act(ctx, o, 2, key_data((0, ok)))[0] == base.OTHER_REASON  # no KEK


def test_key_transfer_storage_failure_is_a_hardware_fault():
    s = MemStorage()
    ctx, o = setup(s, ek=bytes(16))
    s.fail = True
    assert act(ctx, o, 2, key_data((0, EK_WRAPPED)))[0] == base.HARDWARE_FAULT
    assert not ctx.meter.keys.pending


def test_suite_1_and_2_methods_are_refused():
    ctx, o = setup()
    for m in range(3, 9):
        assert act(ctx, o, m, "0900") == (base.READ_WRITE_DENIED, b"")
        assert act(ctx, o, m)[0] == base.READ_WRITE_DENIED


def test_invocation_counter_object_reads_the_next_transmit_counter():
    s = MemStorage({ks.STORE_TX: tx_record(0x40000000)})
    ctx, o = setup(s)
    ic = table()[1]
    k = ctx.meter.keys
    assert get_ok(ctx, ic, 2) == unhex("06 40000000")
    assert get_ok(ctx, ic, 2) == unhex("06 40000000")  # reading does not advance
    k.next_tx_ic()
    k.next_tx_ic()
    assert get_ok(ctx, ic, 2) == unhex("06 40000002")
    assert get(ctx, ic, 3)[0] == base.READ_WRITE_DENIED
    assert put(ctx, ic, 2, "06 00000000") == base.READ_WRITE_DENIED
    assert k.tx_ic == 0x40000002
    ctx.limit = 4
    try:
        get(ctx, ic, 2)
        assert False, "no BufferFull"
    except Exception as e:
        assert type(e).__name__ == "BufferFull"
    ctx.limit = len(ctx.buf)

    def read():
        ctx.pos = 0
        INVOCATION_COUNTER.get(ctx, ic, 2)

    n = allocated(read)
    assert n is None or n == 0, n
