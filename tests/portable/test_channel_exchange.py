# Channel.exchange (issue 16): a whole wrapper message to an idle link served
# in one call must answer exactly as feed() and next_event() do, leave the
# channel in the same state, and decline (do nothing, -1) whatever it does
# not take. Two twin meters get the same messages, one the general way, one
# through exchange(). Runs under pytest and MicroPython.

from dlms_micro import server
from dlms_micro.link import wrapper
from dlms_micro.security import suite0
from support import unhex
from test_gbt import AARQ_GBT, GET_BIG, block, meter
from test_server import AARQ_LLS, AARQ_LLS_WRONG, AARQ_PUBLIC, GET_ENERGY, wrap
from test_server import meter as lls_meter
from test_server_security import F_STOC, INITIATE, Client, aarq, make_meter


def drain(ch, out):
    while True:
        ev = ch.next_event(0)
        if ev == server.EV_NONE:
            return
        if ev == server.EV_CLOSE:
            out.append("close")
            return
        out.append(bytes(ch.tx_buf[ch.tx_start : ch.tx_end]))


def general(ch, data):
    out = []
    k = 0
    while k < len(data):
        k += ch.feed(data, k, len(data), 0)
        drain(ch, out)
    return out


def short(ch, data, n=None):
    # exchange() first, as a port uses it; (what it returned, the messages)
    if n is None:
        n = len(data)
    r = ch.exchange(data, n, 0)
    if r < 0:
        return r, general(ch, bytes(data[:n]))
    out = []
    if r == server.EV_SEND:
        out.append(bytes(ch.tx_buf[ch.tx_start : ch.tx_end]))
        if ch._gbt_push:
            drain(ch, out)
    return r, out


def state(ch):
    a = ch.assoc
    link = ch.link
    return (a.status, a.role, a.conformance, a.client_max_pdu, ch.requests, link.apdus_ok, link.version_errors,
            link.oversized, link.ignored, link.source_wport, link.dest_wport, link._rpos, link._wpos,
            ch.services.block_kind if hasattr(ch.services, "block_kind") else 0, ch._gbt_push)


def twins(make=None, max_apdu=1024):
    if make is None:
        make = meter
    a = server.Channel(make(), wrapper.WrapperServer(max_apdu=max_apdu))
    b = server.Channel(make(), wrapper.WrapperServer(max_apdu=max_apdu))
    return a, b


def same(a, b, data, taken=True):
    # data to both; the answers and states agree; exchange() took it (or not)
    want = general(a, data)
    r, got = short(b, data)
    assert got == want, (data, got, want)
    assert state(a) == state(b)
    assert (r >= 0) == taken, (data, r)
    return got


def test_plain_session_is_answered_alike_and_taken_in_one_call():
    a, b = twins()
    assert unhex("A203020100") in same(a, b, wrap(AARQ_PUBLIC))[0]
    assert same(a, b, wrap(GET_ENERGY))[0][8:] == unhex("C401C1000600003039")
    same(a, b, wrap("C001C1 0001 0100010800ff 0300"))  # another attribute
    same(a, b, wrap("C001C1 0001 0100990800ff 0200"))  # no such object
    same(a, b, wrap("C001C1 0007 0100630100ff 0200"))  # long: GBT blocks
    same(a, b, wrap("C10181 0001 0100010800ff 0200 0600000001"))  # SET, refused or not
    same(a, b, wrap("C30181 0001 0100010800ff 01 01 0F00"))  # ACTION
    same(a, b, wrap("C0"))  # malformed
    same(a, b, wrap("6200"))  # release
    same(a, b, wrap(GET_ENERGY))  # outside an association


def test_lls_right_and_wrong_password():
    a, b = twins(lls_meter)
    same(a, b, wrap(AARQ_LLS_WRONG, src=32))
    same(a, b, wrap(AARQ_LLS, src=32))
    assert a.assoc.role == b.assoc.role == 1
    same(a, b, wrap(GET_ENERGY, src=32))
    same(a, b, wrap(GET_ENERGY, src=16))  # a second client on the stream


def test_gbt_windows_stream_after_the_first_block():
    a, b = twins()
    same(a, b, wrap(AARQ_GBT))
    out = same(a, b, wrap(block(0x80 | 3, 1, 0, unhex(GET_BIG)).hex()))
    assert len(out) == 3  # a window of three blocks, the last two from next_event()
    same(a, b, wrap(block(3, 2, 3).hex()))
    same(a, b, wrap(block(3, 3, 6).hex()))


def test_what_it_declines_it_leaves_untouched():
    a, b = twins()
    same(a, b, wrap(AARQ_PUBLIC))
    get = wrap(GET_ENERGY)
    same(a, b, get + get, taken=False)  # two messages at once
    same(a, b, get[:5], taken=False)  # a part of one...
    same(a, b, get[5:], taken=False)  # ...and the rest: the link holds the first part
    assert b.link._wpos == 0
    same(a, b, wrap(GET_ENERGY, dst=7), taken=False)  # a wPort not this meter's: ignored
    bad_len = bytearray(get)
    bad_len[7] += 1
    same(a, b, bytes(bad_len), taken=False)  # the header says one byte more: waits for it
    same(a, b, get[-1:], taken=False)
    same(a, b, get, taken=True)
    big = bytes([0, 1, 0, 16, 0, 1, 0x10, 0]) + bytes(0x1000)
    same(a, b, big, taken=False)  # longer than the meter takes: pdu-too-long
    same(a, b, get, taken=True)
    same(a, b, bytes([0, 2]) + get[2:], taken=False)  # wrong version: closed


def test_a_part_of_a_buffer_is_served_from_its_start():
    a, b = twins()
    same(a, b, wrap(AARQ_PUBLIC))
    buf = bytearray(64)
    get = wrap(GET_ENERGY)
    buf[: len(get)] = get
    r, out = short(b, buf, len(get))
    assert r == server.EV_SEND and out == general(a, get)


def test_hls_gmac_association_and_ciphered_requests():
    def make():
        return make_meter()

    a, b = twins(make, 512)
    c = Client(tx=0)
    req = wrap(aarq(c.protect(INITIATE)).hex(), src=1)
    ra = general(a, req)
    r, rb = short(b, req)
    assert r == server.EV_SEND and ra == rb and a.assoc.status == b.assoc.status == 1
    # the client's f(StoC), pending association: through Channel._apdu
    c.keys.tx = 1
    hls = unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)
    same(a, b, wrap(c.protect(hls).hex(), src=1))
    assert a.assoc.status == b.assoc.status == 2
    get = c.protect(unhex("C001C1000301000108" + "00FF0200"))
    out = same(a, b, wrap(get.hex(), src=1))
    assert out[0][8] == 0xCC and c.open(out[0][8:]) == unhex("C401C1000600003039")
    same(a, b, wrap(get.hex(), src=1))  # the replay: refused alike
    general_glo = c.protect(unhex("C001C1000301000108" + "00FF0200"), suite0.FORM_GENERAL_GLO)
    assert same(a, b, wrap(general_glo.hex(), src=1))[0][8] == 0xDB
    same(a, b, wrap("C001C1000301000108" + "00FF0200", src=1))  # plain where ciphering is in force
    same(a, b, wrap("6200", src=1))
