# Real peers read our pushes. gurux-dlms 1.0.203 (GXDLMSSecureClient.getData
# with a notification GXReplyData, as its push listener examples do) parses
# the DataNotification the Notifier builds, framed for the TCP wrapper and as
# HDLC UI frames (segmented), plain and general-glo-ciphered, and gets the
# same time stamp and values. dlms-cosem 25.1.0 parses the APDU, plain and
# (after its own suite 0 decryption) general-glo-ciphered. (gurux-dlms 1.0.203 does not check the GCM tag
# of a ciphered notification: a flipped ciphertext byte comes out as a wrong
# value, a flipped tag byte goes unnoticed. Our listener refuses both.)

import datetime
import sys
from pathlib import Path

import pytest
from gurux_dlms import GXByteBuffer, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from dlms_cosem import security  # noqa: E402
from dlms_cosem.connection import XDlmsApduFactory  # noqa: E402
from dlms_cosem.protocol.xdlms import DataNotification, GeneralGlobalCipher  # noqa: E402
from dlms_micro.app import notify  # noqa: E402
from dlms_micro.link import hdlc, wrapper  # noqa: E402
from test_cosem_push import AK, EK, PUSH_LN, T0, TITLE, dt, expected_plain, keyed_meter, make_meter  # noqa: E402

VALUES = [PUSH_LN, dt(10, 0), 12345, 678]


def notification(keyed):
    m, obj = keyed_meter() if keyed else make_meter()
    n = notify.Notifier(m)
    buf = bytearray(300)
    end = n.encode(obj, buf, 8, len(buf), T0)
    assert end > 0 and n.protected == keyed
    return buf, n.start, end


def client(interface, keyed):
    c = GXDLMSSecureClient(True, 102, 1, Authentication.NONE, None, interface)
    if interface == InterfaceType.HDLC:
        c.serverAddress = GXDLMSSecureClient.getServerAddress(1, 17)
    if keyed:
        c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
        c.ciphering.blockCipherKey = EK
        c.ciphering.authenticationKey = AK
    return c


def parse(c, data):
    reply = GXReplyData()
    note = GXReplyData()
    bb = GXByteBuffer(data)
    c.getData(bb, reply, note)
    while not note.isComplete() and bb.position < bb.size:
        c.getData(bb, reply, note)
    assert note.isComplete()
    return note


def check(note):
    assert [bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in note.value] == VALUES
    t = note.time.value
    assert (t.year, t.month, t.day, t.hour, t.minute, t.second) == (2026, 7, 1, 10, 0, 0)
    assert t.utcoffset() in (None, datetime.timedelta(0))


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "ciphered"])
def test_gurux_parses_a_wrapper_push(keyed):
    buf, start, end = notification(keyed)
    h = wrapper.push_frame(buf, start, end, 1)
    check(parse(client(InterfaceType.WRAPPER, keyed), bytes(buf[h:end])))


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "ciphered"])
def test_gurux_parses_segmented_hdlc_ui_frames(keyed):
    buf, start, end = notification(keyed)
    out = bytearray(600)
    e = hdlc.ui_frames(out, 0, buf, start, end, 1, 17, max_info=32)
    assert out[1] & 0x08  # more than one frame
    check(parse(client(InterfaceType.HDLC, keyed), bytes(out[:e])))



@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "ciphered"])
def test_dlms_cosem_parses_the_notification(keyed):
    buf, start, end = notification(keyed)
    apdu = XDlmsApduFactory.apdu_from_bytes(apdu_bytes=bytes(buf[start:end]))
    if keyed:
        assert isinstance(apdu, GeneralGlobalCipher)
        assert bytes(apdu.system_title) == TITLE and apdu.invocation_counter == 1
        sc = apdu.security_control
        assert sc.authenticated and sc.encrypted and sc.security_suite == 0
        plain = security.decrypt(sc, bytes(apdu.system_title), apdu.invocation_counter, EK, apdu.ciphered_text, AK)
        assert plain == expected_plain(1)
        apdu = XDlmsApduFactory.apdu_from_bytes(apdu_bytes=plain)
    assert isinstance(apdu, DataNotification)
    lid = apdu.long_invoke_id_and_priority
    assert lid.long_invoke_id == 1 and not lid.confirmed and not lid.prioritized
    assert apdu.date_time.replace(tzinfo=None) == datetime.datetime(2026, 7, 1, 10, 0)
    assert bytes(apdu.body) == expected_plain(1)[18:]  # after tag, invoke id, date-time
