# xDLMS services (GET / SET / ACTION, with-list, block transfer, refusals),
# driven directly on an association marked open. Runs under pytest and
# MicroPython. The interface classes here are minimal test doubles; the real
# ones have their own tests.

from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.app.xdlms import Services
from dlms_micro.cosem import base
from dlms_micro.meter import Meter, Role
from support import unhex


class Value(base.InterfaceClass):
    # class 1-like: attribute 2 = a double-long-unsigned in state[slot]
    class_id = 1
    attribute_count = 2
    method_count = 1

    def get(self, ctx, obj, attr):
        ctx.pos = axdr.enc_double_long_unsigned(ctx.buf, ctx.pos, ctx.meter.state[obj[base.E_SLOT]])
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        r = ctx.r
        if r.peek() != axdr.DOUBLE_LONG_UNSIGNED:
            return base.TYPE_UNMATCHED
        ctx.meter.state[obj[base.E_SLOT]] = r.double_long_unsigned()
        return base.SUCCESS

    def action(self, ctx, obj, method):
        # method 1: add the integer parameter, return the new value
        if not ctx.has_data:
            return base.TYPE_UNMATCHED
        v = ctx.r.number()
        ctx.meter.state[obj[base.E_SLOT]] += v
        ctx.pos = axdr.enc_double_long_unsigned(ctx.buf, ctx.pos, ctx.meter.state[obj[base.E_SLOT]])
        return base.SUCCESS


class Big(base.InterfaceClass):
    # class 7-like: attribute 2 = array of N long-unsigned, streamed in pieces
    class_id = 7
    attribute_count = 2

    def get(self, ctx, obj, attr):
        n = obj[base.E_PARAM]
        i = ctx.cursor
        buf = ctx.buf
        p = ctx.pos
        if i == 0:
            p = axdr.enc_array(buf, p, n)
        while i < n:
            if p + 3 > ctx.limit:
                break
            p = axdr.enc_long_unsigned(buf, p, i)
            i += 1
        ctx.pos = p
        ctx.cursor = i if i < n else 0
        return base.SUCCESS

    def selectors(self, attr):
        return 1 << 2 if attr == 2 else 0


class Chunky(base.InterfaceClass):
    # class 7-like with 40-byte items; raises BufferFull when the next item
    # does not fit below ctx.limit (as the real long attributes do)
    class_id = 7
    attribute_count = 2

    def get(self, ctx, obj, attr):
        n = obj[base.E_PARAM]
        i = ctx.cursor
        p = ctx.pos
        if i == 0:
            p = axdr.enc_array(ctx.buf, p, n)
        item = bytes(38)
        wrote = 0
        while i < n:
            if p + 40 > ctx.limit:
                if not wrote:
                    raise axdr.BufferFull("no room for one item")
                break
            p = axdr.enc_octet_string(ctx.buf, p, item)
            i += 1
            wrote += 1
        ctx.pos = p
        ctx.cursor = i if i < n else 0
        return base.SUCCESS


VALUE = Value()
BIG = Big()
RW = (b"\x01\x03", b"\x01")
RO = (b"\x01\x01", b"")

TABLE = (
    (1, 0, b"\x01\x00\x01\x08\x00\xff", VALUE, 0, (RW, RO), None),
    (1, 0, b"\x00\x00\x2a\x00\x00\xff", VALUE, 1, (RO, None), None),
    (7, 1, b"\x01\x00\x63\x01\x00\xff", BIG, -1, (RO, RO), 300),
    (7, 1, b"\x01\x00\x63\x03\x00\xff", Chunky(), -1, (RO, RO), 60),
)

ALL = (
    asn.CONF_GET | asn.CONF_SET | asn.CONF_ACTION | asn.CONF_BLOCK_TRANSFER_WITH_GET
    | asn.CONF_BLOCK_TRANSFER_WITH_SET | asn.CONF_BLOCK_TRANSFER_WITH_ACTION
    | asn.CONF_SELECTIVE_ACCESS | asn.CONF_MULTIPLE_REFERENCES
)


def make(role=0, conformance=ALL, client_max_pdu=1024, max_pdu=1024):
    meter = Meter(TABLE, (Role(16), Role(32)), [12345, 7])
    a = asn.AssociationState()
    a.status = asn.ASSOCIATED
    a.role = role
    a.conformance = conformance
    a.client_max_pdu = client_max_pdu
    return meter, a, Services(meter, a, max_pdu)


def call(svc, hexreq, out_size=2048):
    req = unhex(hexreq)
    out = bytearray(out_size)
    end = svc.handle(req, 0, len(req), out, 8, out_size)
    return bytes(out[8:end])


ENERGY = "0001 0100010800ff"  # class 1 + 1.0.1.8.0.255


def test_get_normal():
    m, a, s = make()
    assert call(s, "C001C1" + ENERGY + "0200") == unhex("C401C1 00 0600003039")


def test_get_logical_name_answered_by_dispatcher():
    m, a, s = make()
    assert call(s, "C00181" + ENERGY + "0100") == unhex("C40181 00 0906 0100010800FF")


def test_get_unknown_object_is_read_write_denied():
    m, a, s = make()
    assert call(s, "C001C1 0001 0100020800ff 0200") == unhex("C401C1 01 03")


def test_get_wrong_class_is_object_class_inconsistent():
    m, a, s = make()
    assert call(s, "C001C1 0003 0100010800ff 0200") == unhex("C401C1 01 09")


def test_get_attribute_out_of_range_is_read_write_denied():
    m, a, s = make()
    assert call(s, "C001C1" + ENERGY + "0900") == unhex("C401C1 01 03")
    assert call(s, "C001C1" + ENERGY + "0000") == unhex("C401C1 01 03")


def test_object_not_in_association_is_read_write_denied():
    m, a, s = make(role=1)
    assert call(s, "C001C1 0001 00002a0000ff 0200") == unhex("C401C1 01 03")


def test_set_normal_and_read_back():
    m, a, s = make()
    assert call(s, "C101C1" + ENERGY + "0200 0600000064") == unhex("C501C1 00")
    assert m.state[0] == 100


def test_set_type_unmatched():
    m, a, s = make()
    assert call(s, "C101C1" + ENERGY + "0200 120064") == unhex("C501C1 0C")
    assert m.state[0] == 12345


def test_set_without_write_access_is_denied():
    m, a, s = make(role=1)
    assert call(s, "C101C1" + ENERGY + "0200 0600000064") == unhex("C501C1 03")
    assert m.state[0] == 12345


def test_set_logical_name_is_denied():
    m, a, s = make()
    assert call(s, "C101C1" + ENERGY + "0100 0906 0100010800ff") == unhex("C501C1 03")


def test_action_with_return_data():
    m, a, s = make()
    assert call(s, "C301C1" + ENERGY + "01 01 0F05") == unhex("C701C1 00 01 00 060000303E")
    assert m.state[0] == 12350


def test_refused_action_has_the_optional_field_byte():
    m, a, s = make(role=1)
    assert call(s, "C301C1" + ENERGY + "01 01 0F05") == unhex("C701C1 03 00")


def test_action_on_unknown_object():
    m, a, s = make()
    assert call(s, "C301C1 0001 0100630200ff 01 00") == unhex("C701C1 03 00")


def test_get_with_list():
    m, a, s = make()
    req = "C003C1 03" + ENERGY + "0200" + "0001 00002a0000ff 0200" + "0001 0100020800ff 0200"
    assert call(s, req) == unhex("C403C1 03 00 0600003039 00 0600000007 01 03")


def test_set_with_list():
    m, a, s = make()
    req = "C104C1 02" + ENERGY + "0200 0001 00002a0000ff 0200" + " 02 0600000001 0600000002"
    assert call(s, req) == unhex("C505C1 02 00 03")
    assert m.state == [1, 7]


def test_long_attribute_goes_in_blocks_and_reassembles():
    m, a, s = make(client_max_pdu=128)
    first = call(s, "C001C1 0007 0100630100ff 0200")
    assert first[:4] == unhex("C402C1 00") and first[4:8] == unhex("00000001")
    assert len(first) <= 128
    raw = b""
    block = first
    n = 1
    while True:
        assert block[0:3] == unhex("C402C1")
        assert int.from_bytes(block[4:8], "big") == n
        assert block[8] == 0  # raw-data
        r = axdr.Reader(block, 9)
        size = r.length()
        raw += block[r.pos : r.pos + size]
        assert r.pos + size == len(block)
        if block[3]:
            break
        block = call(s, "C002C1 %08x" % n)
        assert len(block) <= 128
        n += 1
    tag, value, end = axdr.decode(raw)
    assert tag == axdr.ARRAY and end == len(raw)
    assert [v for t, v in value] == list(range(300))
    assert a.block_kind == 0


def test_get_next_with_wrong_block_number_aborts():
    m, a, s = make(client_max_pdu=128)
    call(s, "C001C1 0007 0100630100ff 0200")
    assert call(s, "C002C1 00000005") == unhex("C402C1 01 00000005 01 0F")
    assert call(s, "C002C1 00000002") == unhex("C402C1 01 00000000 01 10")


def test_get_next_without_transfer():
    m, a, s = make()
    assert call(s, "C002C1 00000001") == unhex("C402C1 01 00000000 01 10")


def test_long_response_without_block_transfer_negotiated():
    m, a, s = make(client_max_pdu=128, conformance=asn.CONF_GET)
    assert call(s, "C001C1 0007 0100630100ff 0200") == unhex("C401C1 01 FA")


def test_selective_access_unsupported_is_refused():
    m, a, s = make()
    assert call(s, "C001C1" + ENERGY + "0201 01 0F00") == unhex("C401C1 01 FA")


def test_selective_access_not_negotiated_is_refused():
    m, a, s = make(conformance=asn.CONF_GET)
    assert call(s, "C001C1 0007 0100630100ff 0201 02 0F00") == unhex("C401C1 01 FA")


def test_set_with_datablocks():
    m, a, s = make()
    # value 06 00 00 01 00 split over two blocks
    assert call(s, "C102C1" + ENERGY + "0200 00 00000001 03 060000") == unhex("C502C1 00000001")
    assert call(s, "C103C1 01 00000002 02 0100") == unhex("C503C1 00 00000002")
    assert m.state[0] == 256


def test_set_datablock_out_of_order():
    m, a, s = make()
    call(s, "C102C1" + ENERGY + "0200 00 00000001 03 060000")
    assert call(s, "C103C1 01 00000003 02 0100") == unhex("C503C1 13 00000003")
    assert call(s, "C103C1 01 00000004 02 0100") == unhex("C503C1 12 00000004")


def test_action_with_pblocks():
    m, a, s = make()
    assert call(s, "C304C1" + ENERGY + "01 00 00000001 01 0F") == unhex("C704C1 00000001")
    assert call(s, "C306C1 01 00000002 01 05") == unhex("C701C1 00 01 00 060000303E")


def test_service_not_negotiated_gets_exception():
    m, a, s = make(conformance=asn.CONF_GET)
    assert call(s, "C101C1" + ENERGY + "0200 0600000064") == unhex("D8 01 02")


def test_not_associated_gets_exception():
    m, a, s = make()
    a.status = asn.NON_ASSOCIATED
    assert call(s, "C001C1" + ENERGY + "0200") == unhex("D8 01 01")


def test_unknown_apdu_and_garbage_get_exceptions():
    m, a, s = make()
    assert call(s, "C9 01 02 03") == unhex("D8 02 02")
    assert call(s, "C0") == unhex("D8 02 03")
    assert call(s, "C001C1 0001 0100") == unhex("D8 02 03")  # truncated
    assert call(s, "C007C1") == unhex("D8 02 03")  # unknown choice
    # and it still serves
    assert call(s, "C001C1" + ENERGY + "0200") == unhex("C401C1 00 0600003039")


def test_invoke_id_and_priority_echoed():
    m, a, s = make()
    assert call(s, "C00142" + ENERGY + "0200")[2] == 0x42


def test_get_allocates_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
        import gc
    except ImportError:
        return
    m, a, s = make()
    req = unhex("C001C1" + ENERGY + "0200")
    out = bytearray(256)
    n = len(req)
    s.handle(req, 0, n, out, 8, 256)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(20):
        s.handle(req, 0, n, out, 8, 256)
    used = gc.mem_alloc() - before
    gc.enable()
    assert used == 0, used


def test_pending_association_passes_only_reply_to_hls():
    m, a, s = make()
    a.status = asn.ASSOCIATION_PENDING
    assert call(s, "C001C1" + ENERGY + "0200") == unhex("D8 01 01")
    # the HLS reply reaches the dispatcher (here: no such object -> refused
    # by the dispatcher, not by the association state)
    assert call(s, "C301C1 000F 0000280000ff 01 01 0906 000102030405") == unhex("C701C1 03 00")


def read_blocks(s, first, max_pdu):
    raw = b""
    block = first
    n = 1
    while True:
        assert block[0:3] == unhex("C402C1") and block[8] == 0, block[:12]
        assert len(block) <= max_pdu
        r = axdr.Reader(block, 9)
        size = r.length()
        raw += block[r.pos : r.pos + size]
        if block[3]:
            return raw
        block = call(s, "C002C1 %08x" % n)
        n += 1


def check_chunky_blocks(pdu):
    m, a, s = make(client_max_pdu=pdu, max_pdu=1024)
    first = call(s, "C001C1 0007 0100630300ff 0200")
    raw = read_blocks(s, first, pdu)
    tag, value, end = axdr.decode(raw)
    assert end == len(raw) and len(value) == 60, pdu


def test_blocks_as_large_as_the_block_buffer_carry_items_over():
    # client PDU as large as the block buffer: the refill after each block
    # has little room, so items must carry over to the next block
    check_chunky_blocks(1024)


def test_blocks_just_under_the_block_buffer_carry_items_over():
    check_chunky_blocks(1000)


def test_blocks_of_middling_size_carry_items_over():
    check_chunky_blocks(700)


def test_small_blocks_of_a_long_attribute():
    check_chunky_blocks(130)


def test_get_normal_short_way_answers_as_handle_or_declines():
    # Services.get_normal (the short way of a plain GET-Request-Normal)
    # writes the same response as handle(), or returns -2 with nothing done
    # (handle() then answers): every object, attributes 1..3 and 200, a
    # missing object, the wrong class, both roles, with and without GET,
    # responses short and too long for the client (blocks, or refused
    # without block transfer).
    reqs = []
    for cls in (1, 7):
        for ln in ("0100010800ff", "00002a0000ff", "0100630100ff", "0100630300ff", "0100630200ff"):
            for attr in (1, 2, 3, 200):
                reqs.append(unhex("C001C1%04x%s%02x00" % (cls, ln, attr)))
    zero = bytes(600)
    o1 = bytearray(600)
    o2 = bytearray(600)
    got_short = 0
    for role in (0, 1):
        for conformance in (ALL, ALL & ~asn.CONF_GET, ALL & ~asn.CONF_BLOCK_TRANSFER_WITH_GET):
            for client_max_pdu in (512, 64):
                m1, a1, s1 = make(role, conformance, client_max_pdu)
                m2, a2, s2 = make(role, conformance, client_max_pdu)
                for req in reqs:
                    o1[0:600] = zero
                    o2[0:600] = zero
                    q = s1.get_normal(req, 0, o1, 8, 600)
                    want = s2.handle(req, 0, len(req), o2, 8, 600)
                    if q == -2:
                        assert o1 == zero, req  # nothing written
                        continue
                    got_short += 1
                    assert q == want and o1[8:q] == o2[8:want], (req, role, conformance)
                    assert (a1.block_kind, a1.block_number, s1._blen) == (a2.block_kind, a2.block_number, s2._blen)
    assert got_short > 20  # the short way did serve the plain cases
