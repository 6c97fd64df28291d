# Association LN (class 15, version 1): object_list encoding and streaming
# (directly and through the xDLMS GET block transfer), the association's
# facts, secrets, HLS hook, static object table.

from cosem_support import act, get, get_ok, make, put, roles
from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.app.xdlms import Services
from dlms_micro.cosem import association_ln, base, clock
from dlms_micro.cosem.association_ln import ASSOCIATION_LN, NAME_OCTETS
from dlms_micro.cosem.data import DATA
from dlms_micro.cosem.register import REGISTER
from dlms_micro.meter import MECH_HLS_GMAC, Role
from support import raises, unhex

CURRENT = b"\x00\x00\x28\x00\x00\xff"
SECURITY_SETUP = b"\x00\x00\x2b\x00\x00\xff"


class Profile(base.InterfaceClass):
    # stand-in with access selectors on attribute 2 (1 and 2)
    class_id = 7
    version = 1
    attribute_count = 8
    method_count = 2

    def selectors(self, attr):
        return 0b110 if attr == 2 else 0


PROFILE = Profile()

ASSOC_ACC = (b"\x01\x01\x01\x01\x01\x01\x00\x01\x01", b"\x00\x00\x00\x00")
MGMT_ACC = (b"\x01\x01\x01\x01\x01\x01\x02\x01\x01", b"\x01\x01\x00\x00")


def table():
    return (
        (15, 1, CURRENT, ASSOCIATION_LN, -1, (ASSOC_ACC, MGMT_ACC), (-1, SECURITY_SETUP)),
        (1, 0, b"\x00\x00\x2a\x00\x00\xff", DATA, 0, ((b"\x01\x01", b""), (b"\x01\x03", b"")), (axdr.OCTET_STRING,)),
        (3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 1, (None, (b"\x01\x01\x01", b"\x01")), (0, 30)),
        (7, 1, b"\x01\x00\x63\x01\x00\xff", PROFILE, -1, (None, (b"\x01\x01", b"\x01\x00")), None),
        (15, 1, b"\x00\x00\x28\x00\x01\xff", ASSOCIATION_LN, -1, (None, MGMT_ACC), (0, None, NAME_OCTETS)),
    )


def assoc_ctx(role=0, size=512):
    t = table()
    return make(t, [b"LDN", 7], role=role, size=size), t


# the object_list elements, written out by hand from the Blue Book's
# object_list_element definition
EL_ASSOC_ROLE0 = (
    "0204 12000F 1101 0906 0000280000FF 0202"
    "0109"
    "0203 0F01 1601 00" "0203 0F02 1601 00" "0203 0F03 1601 00" "0203 0F04 1601 00" "0203 0F05 1601 00"
    "0203 0F06 1601 00" "0203 0F07 1600 00" "0203 0F08 1601 00" "0203 0F09 1601 00"
    "0104"
    "0202 0F01 1600" "0202 0F02 1600" "0202 0F03 1600" "0202 0F04 1600"
)
EL_DATA_ROLE0 = "0204 1200 01 1100 0906 00002A0000FF 0202 0102 0203 0F01 1601 00 0203 0F02 1601 00 0100"
EL_DATA_ROLE1 = "0204 1200 01 1100 0906 00002A0000FF 0202 0102 0203 0F01 1601 00 0203 0F02 1603 00 0100"
EL_REGISTER_ROLE1 = (
    "0204 1200 03 1100 0906 0100010800FF 0202"
    "0103 0203 0F01 1601 00 0203 0F02 1601 00 0203 0F03 1601 00"
    "0101 0202 0F01 1601"
)
EL_PROFILE_ROLE1 = (
    "0204 1200 07 1101 0906 0100630100FF 0202"
    "0108 0203 0F01 1601 00 0203 0F02 1601 0102 0F01 0F02"
    "0203 0F03 1600 00 0203 0F04 1600 00 0203 0F05 1600 00 0203 0F06 1600 00"
    "0203 0F07 1600 00 0203 0F08 1600 00"
    "0102 0202 0F01 1601 0202 0F02 1600"
)


def test_object_list_lists_the_role_objects_with_its_rights():
    ctx, t = assoc_ctx()
    assert get_ok(ctx, t[0], 2) == unhex("0102" + EL_ASSOC_ROLE0 + EL_DATA_ROLE0)


def test_object_list_of_another_role_and_selectors():
    ctx, t = assoc_ctx(role=1)
    out = get_ok(ctx, t[0], 2)
    assert out[:2] == unhex("0105")
    assert unhex(EL_DATA_ROLE1 + EL_REGISTER_ROLE1 + EL_PROFILE_ROLE1) in out
    # the element sizes the streaming relies on
    p = 2
    for e in t:
        n = association_ln.element_size(e, e[base.E_ACCESS][1], e[base.E_IC])
        b = bytearray(n)
        assert association_ln.put_element(b, 0, e, e[base.E_ACCESS][1], e[base.E_IC]) == n
        assert out[p : p + n] == bytes(b)
        p += n
    assert p == len(out)


P_UNSIGNED = (axdr.UNSIGNED,)
P_WH = (0, 30)
RW_ONLY = ((b"\x01\x03", b""),)
HIDDEN = (None,)


def big_table(n, repeat=1):
    # the Association LN, then n Data objects, one Register hidden from the
    # role after every fifth; `repeat` times over (shared rows keep the
    # table small on a 100 KB heap)
    rows = []
    for i in range(n):
        rows.append((1, 0, bytes((0, 0, 96, 1, i, 255)), DATA, 0, RW_ONLY, P_UNSIGNED))
        if i % 5 == 4:
            rows.append((3, 0, bytes((1, 0, 1, 8, i, 255)), REGISTER, 0, HIDDEN, P_WH))
    return tuple([(15, 1, CURRENT, ASSOCIATION_LN, -1, (ASSOC_ACC,), None)] + rows * repeat)


def t_ic(ctx, e):
    return ctx.meter.handlers[e[base.E_IC]]


def whole_list(ctx):
    # object_list in one piece, in a buffer of exactly its size
    t = ctx.meter.table
    size = 4
    for e in t:
        acc = e[base.E_ACCESS][ctx.assoc.role]
        if acc is not None:
            size += association_ln.element_size(e, acc, t_ic(ctx, e))
    ctx.buf = bytearray(size)
    ctx.pos = 0
    ctx.limit = size
    ctx.cursor = 0
    assert ASSOCIATION_LN.get(ctx, t[0], 2) == base.SUCCESS
    assert ctx.cursor == 0
    return bytes(ctx.buf[0 : ctx.pos])


def stream(ctx, limit, whole):
    # Encode the attribute in pieces, each at the start of one reused buffer
    # limited to `limit` bytes; check that they continue `whole` exactly.
    # Returns the number of pieces.
    buf = bytearray(limit)
    p = 0
    n = 0
    ctx.cursor = 0
    while True:
        ctx.buf = buf
        ctx.pos = 0
        ctx.limit = limit
        assert ASSOCIATION_LN.get(ctx, ctx.meter.table[0], 2) == base.SUCCESS
        k = ctx.pos
        assert k <= limit
        for i in range(k):
            assert buf[i] == whole[p + i], (limit, p + i)
        p += k
        n += 1
        if ctx.cursor == 0:
            assert p == len(whole)
            return n


def test_object_list_streams_in_pieces_that_concatenate_to_the_whole():
    t = big_table(33, 4)  # 133 visible: a 2-byte array count
    ctx = make(t, [0])
    whole = whole_list(ctx)
    assert whole[:3] == unhex("0181 85")
    # the Association LN element is the longest: 108 bytes
    assert association_ln.element_size(t[0], t[0][base.E_ACCESS][0], t[0][base.E_IC]) == 108
    for limit in (108, 109, 128, 257, 1000):
        assert stream(ctx, limit, whole) > 1
    raises(axdr.BufferFull, stream, ctx, 107, whole)


def test_object_list_piece_too_small_for_one_element():
    t = big_table(3)
    ctx = make(t, [0])
    ctx.buf = bytearray(64)
    ctx.pos = 0
    ctx.limit = 1  # not even the array header
    ctx.cursor = 0
    raises(axdr.BufferFull, ASSOCIATION_LN.get, ctx, t[0], 2)
    # the header fits, the first element does not: a piece with the header
    ctx.limit = 10
    assert ASSOCIATION_LN.get(ctx, t[0], 2) == base.SUCCESS
    assert ctx.pos == 2 and ctx.cursor == 1
    # a continuation that cannot place one element cannot make progress
    ctx.pos = 0
    raises(axdr.BufferFull, ASSOCIATION_LN.get, ctx, t[0], 2)


def test_object_list_through_get_block_transfer():
    # the dispatcher's GET with a small client PDU: the blocks' raw data
    # continue one direct encoding exactly
    t = big_table(40)
    ctx = make(t, [0])
    whole = whole_list(ctx)
    meter = ctx.meter
    a = ctx.assoc
    a.conformance = asn.CONF_GET | asn.CONF_BLOCK_TRANSFER_WITH_GET
    a.client_max_pdu = 128
    svc = Services(meter, a, 512)
    out = bytearray(600)
    req = bytearray(unhex("C001C1 000F 0000280000FF 02 00"))
    end = svc.handle(req, 0, len(req), out, 0, len(out))
    p = 0
    n = 1
    r = axdr.Reader()
    nxt = bytearray(unhex("C002C1 00000000"))
    while True:
        assert end <= 128
        assert out[0] == 0xC4 and out[1] == 2 and out[2] == 0xC1
        last = out[3]
        assert out[4] == 0 and out[5] == 0 and out[6] == 0 and out[7] == n
        assert out[8] == 0  # raw-data
        r.reset(out, 9, end)
        size = r.length()
        assert r.pos + size == end
        for i in range(size):
            assert out[r.pos + i] == whole[p + i]
        p += size
        if last:
            break
        nxt[6] = n
        end = svc.handle(nxt, 0, len(nxt), out, 0, len(out))
        n += 1
    assert p == len(whole)
    assert n > 5


def test_associated_partners_context_and_mechanism_names():
    ctx, t = assoc_ctx()
    assert get_ok(ctx, t[0], 3) == unhex("0202 0F10 120001")
    assert get_ok(ctx, t[0], 4) == unhex("0207 1102 1110 1202F4 1105 1108 1101 1101")
    assert get_ok(ctx, t[0], 6) == unhex("0207 1102 1110 1202F4 1105 1108 1102 1100")
    assert get_ok(ctx, t[0], 8) == unhex("16 02")
    assert get_ok(ctx, t[0], 9) == unhex("0906 00002B0000FF")
    ctx.assoc.context = asn.CONTEXT_LN_CIPHERED
    assert get_ok(ctx, t[0], 4) == unhex("0207 1102 1110 1202F4 1105 1108 1101 1103")


def test_xdlms_context_info_never_carries_a_key():
    ctx, t = assoc_ctx()
    # conformance 00101D, receive 1024, send 512 (the client's), DLMS 6
    assert get_ok(ctx, t[0], 5) == unhex("0206 0418 00101D 120400 120200 1106 0F00 0900")
    ctx.assoc.quality_of_service = 3
    assert get_ok(ctx, t[0], 5)[-4:] == unhex("0F03 0900")


def test_another_association_object_describes_its_own_role():
    ctx, t = assoc_ctx(role=1)  # the management client reads the public one
    other = t[4]  # param (0, None, NAME_OCTETS): role 0
    assert get_ok(ctx, other, 2) == unhex("0102" + EL_ASSOC_ROLE0 + EL_DATA_ROLE0)
    assert get_ok(ctx, other, 3) == unhex("0202 0F10 120001")
    assert get_ok(ctx, other, 4) == unhex("0907 60857405080101")
    assert get_ok(ctx, other, 6) == unhex("0907 60857405080200")
    assert get_ok(ctx, other, 8) == unhex("16 00")  # not the serving association
    assert get_ok(ctx, other, 9) == unhex("0906 000000000000")
    assert get_ok(ctx, other, 5) == unhex("0206 0418 00101D 120400 120400 1106 0F00 0900")
    # the current association object seen from role 1 (LLS)
    assert get_ok(ctx, t[0], 3) == unhex("0202 0F20 120001")
    assert get_ok(ctx, t[0], 6) == unhex("0207 1102 1110 1202F4 1105 1108 1102 1101")


def test_secret_is_never_read_and_set_changes_the_role_password():
    ctx, t = assoc_ctx(role=1)
    assert get(ctx, t[0], 7) == (base.READ_WRITE_DENIED, b"")
    assert put(ctx, t[0], 7, "0904 41424344") == base.SUCCESS
    assert ctx.meter.roles[1].secret == b"ABCD"
    assert put(ctx, t[0], 7, "0A04 41424344") == base.TYPE_UNMATCHED
    assert put(ctx, t[0], 7, "0900") == base.OTHER_REASON
    assert ctx.meter.roles[1].secret == b"ABCD"
    # through another association's object: that role's password
    assert put(ctx, t[4], 7, "0902 3030") == base.SUCCESS
    assert ctx.meter.roles[0].secret == b"00"
    assert put(ctx, t[0], 3, "0202 0F10 120001") == base.READ_WRITE_DENIED


def test_reply_to_hls_authentication():
    meter_roles = (Role(16), Role(48, MECH_HLS_GMAC, conformance=0x00101D))
    t = table()
    ctx = make(t, [b"", 0], role=1, meter_roles=meter_roles)
    a = ctx.assoc
    f_stoc = "0910 10000001 0102030405060708090A0B0C"
    # outside the pending state
    assert act(ctx, t[0], 1, f_stoc) == (base.READ_WRITE_DENIED, b"")
    a.status = asn.ASSOCIATION_PENDING
    # no HLS implementation
    assert act(ctx, t[0], 1, f_stoc) == (base.OTHER_REASON, b"")
    seen = []

    def verify(c, buf, start, end):
        seen.append(bytes(buf[start:end]))
        return b"\x10\x00\x00\x00\x01ctos" if buf[end - 1] == 0x0C else None

    ctx.meter.hls_verify = verify
    assert act(ctx, t[0], 1, "0900") == (base.READ_WRITE_DENIED, b"")  # wrong answer
    assert a.status == asn.NON_ASSOCIATED
    a.status = asn.ASSOCIATION_PENDING
    assert act(ctx, t[0], 1, f_stoc) == (base.SUCCESS, unhex("0909 1000000001 63746F73"))
    assert seen[-1] == unhex(f_stoc)[2:]
    assert a.status == asn.ASSOCIATED
    a.status = asn.ASSOCIATION_PENDING
    assert act(ctx, t[0], 1, "0F00") == (base.TYPE_UNMATCHED, b"")
    assert act(ctx, t[0], 1) == (base.TYPE_UNMATCHED, b"")
    # another association's object cannot authenticate this one
    assert act(ctx, t[4], 1, f_stoc) == (base.READ_WRITE_DENIED, b"")


def test_change_hls_secret():
    meter_roles = (Role(16), Role(48, MECH_HLS_GMAC))
    t = table()
    ctx = make(t, [b"", 0], role=1, meter_roles=meter_roles)
    assert act(ctx, t[0], 2, "0904 01020304") == (base.SUCCESS, b"")
    assert ctx.meter.roles[1].hls_secret == b"\x01\x02\x03\x04"
    assert Role(1).hls_secret == b""  # others keep the default
    assert act(ctx, t[0], 2, "0A01 41")[0] == base.TYPE_UNMATCHED
    assert act(ctx, t[0], 2, "0900")[0] == base.OTHER_REASON
    # role 0 has no HLS
    assert act(ctx, t[4], 2, "0904 01020304")[0] == base.OTHER_REASON


def test_add_and_remove_object_are_refused_the_table_is_static():
    ctx, t = assoc_ctx()
    data_el = EL_DATA_ROLE0
    assert act(ctx, t[0], 3, data_el) == (base.READ_WRITE_DENIED, b"")
    assert act(ctx, t[0], 4, data_el) == (base.READ_WRITE_DENIED, b"")
    # not in this association's list
    assert act(ctx, t[0], 4, EL_REGISTER_ROLE1)[0] == base.OBJECT_UNDEFINED
    assert act(ctx, t[0], 3, "0203 1200 01 1100 0906 00002A0000FF")[0] == base.TYPE_UNMATCHED
    assert act(ctx, t[0], 4, "0F00")[0] == base.TYPE_UNMATCHED
    assert act(ctx, t[0], 3)[0] == base.TYPE_UNMATCHED
    assert act(ctx, t[0], 5, "0F00")[0] == base.READ_WRITE_DENIED


def test_class_constants():
    a = ASSOCIATION_LN
    assert (a.class_id, a.version, a.attribute_count, a.method_count) == (15, 1, 9, 4)
    assert a.selectors(2) == 0
    assert roles()[1].secret == b"12345678"
    assert clock.SLOTS == 10


def test_object_list_pieces_allocate_nothing():
    from cosem_support import allocated

    t = big_table(12)
    ctx = make(t, [0])
    buf = bytearray(200)

    def piece():
        ctx.buf = buf
        ctx.pos = 0
        ctx.limit = 200
        ctx.cursor = 3  # a continuation from the third entry
        ASSOCIATION_LN.get(ctx, t[0], 2)

    used = allocated(piece)
    if used is None:
        return
    assert used == 0, used
