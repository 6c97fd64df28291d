# General block transfer in a ciphered (suite 0) association: the protected
# APDU is what travels in GBT blocks. Runs under pytest and MicroPython (its
# own module: the ciphering test needs the heap the other GBT tests use).

from dlms_micro import server
from dlms_micro.link import wrapper
from support import unhex
from gbt_support import block, collect
from test_server import wsend
import test_server_security as tss


class Ciphered:
    def __init__(self, ch):
        self.ch = ch

    def send(self, apdu):
        n = len(apdu)
        return [x[8:] for x in wsend(self.ch, bytes([0, 1, 0, 1, 0, 1, n >> 8, n & 0xFF]) + bytes(apdu))]


def test_ciphered_response_is_protected_whole_then_split():
    # Suite 0: the glo-get-request comes in one GBT block, the
    # glo-get-response (object_list, longer than the client's 64-byte PDU)
    # is ciphered whole and its ciphered bytes go in blocks.
    m = tss.make_meter()
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=512))
    log = []
    ch.set_log(log.append)
    c = tss.Client(tx=0)
    initiate = unhex("01000000065F1F0400207E1F0040")  # GBT proposed, 64-byte PDU
    tss.exchange(ch, tss.aarq(c.protect(initiate)))
    c.keys.tx = 1
    action = unhex("C301C1000F0000280000FF0101 0911") + unhex(tss.F_STOC)
    assert tss.exchange(ch, c.protect(action))[0] == 0xCF
    assert ch.assoc.status == 2
    get = c.protect(unhex("C001C1 000F 0000280000FF 0200"))
    s = Ciphered(ch)
    raw, windows = collect(s, s.send(block(0x82, 1, 0, get)), 2)
    assert raw[0] == 0xCC  # glo-get-response
    assert len(windows) > 1 and len(raw) > 64
    # glo-get-response: tag, BER length (long form here), SC, IC, C, T
    h = 2 + (raw[1] & 0x7F) if raw[1] & 0x80 else 2
    assert raw[h] == 0x30
    b = bytearray(raw)
    iv = bytearray(tss.SERVER_TITLE) + b[h + 1 : h + 5]
    e = len(b) - 12
    assert c.gcm.decrypt(iv, 0, bytearray([0x30]) + tss.AK, 0, 17, b, h + 5, e, b, e)
    plain = bytes(b[h + 5 : e])
    assert plain[:6] == unhex("C401C100 0102")  # object_list: array of 2
    assert log == []
