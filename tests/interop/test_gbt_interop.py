# General block transfer with a real peer: gurux-dlms negotiates GBT (and
# not block-transfer-with-get, so the meter has no other way to send a long
# response) and reads the association's object_list from the demo meter over
# the wrapper and HDLC, with a GBT window of 1 and of 4; the result must
# equal the plain read (GET datablocks) with the same small PDU.
#
# Facts about gurux-dlms 1.0.203 this relies on (its public API): the
# client's proposedConformance and gbtWndowSize settings; it acknowledges a
# GBT block (receiverReady) unless the block is streamed.

import pytest
from interop_peers import TRANSPORTS, WRAPPER, GuruxPeer

CLIENT_PDU = 64  # the object list spans several blocks


@pytest.fixture(scope="module")
def gbt_meter(tmp_path_factory):
    # The demo meter, its public role (SAP 16) granting general block
    # transfer too (the demo's role list may not grant it yet).
    from dlms_micro.app import association as asn
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    demo = DemoMeter(storage=FileStorage(str(tmp_path_factory.mktemp("gbt-meter"))), seed=1)
    for role in demo.meter.roles:
        if role.client_sap == 16:
            role.conformance |= asn.CONF_GENERAL_BLOCK_TRANSFER
    svc = ThreadedService(demo, host="127.0.0.1", wrapper_port=0, hdlc_port=0, pty=True)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def _peer(meter, transport, gbt, window=1):
    from gurux_dlms.enums import Conformance

    p = GuruxPeer(meter, transport, sap=16, max_pdu=CLIENT_PDU)
    c = p.client
    conf = c.proposedConformance
    if gbt:
        conf = (conf | Conformance.GENERAL_BLOCK_TRANSFER) & ~Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        c.gbtWndowSize = window
        # gurux-dlms 1.0.203 numbers its GBT acknowledgements (receiverReady)
        # from settings.blockNumber, an attribute its settings never get
        # (AttributeError). Supply it as its block counter (blockIndex, which
        # it checks the next block-number-ack against once it has sent it).
        c.settings.__class__ = _gurux_settings_with_block_number(type(c.settings))
    else:
        conf = conf & ~Conformance.GENERAL_BLOCK_TRANSFER
    c.proposedConformance = conf
    return p


def _gurux_settings_with_block_number(cls):
    class Settings(cls):
        @property
        def blockNumber(self):
            return self.blockIndex

    return Settings


def _read(meter, transport, gbt, window=1):
    p = _peer(meter, transport, gbt, window)
    try:
        p.connect()
        objs = p.read_object_list()
        listed = [(int(o.objectType), o.version, str(o.logicalName)) for o in objs]
        p.release()
        p.disconnect()
        return listed, p.trace
    except Exception:
        print(p.trace_text())
        raise
    finally:
        p.close()


def _gbt_blocks(trace, transport):
    # block-control bytes of the GBT APDUs the meter sent
    rx = b"".join(bytes.fromhex(h) for d, h in trace if d == "rx")
    found = []
    if transport == WRAPPER:
        i = 0
        while i + 8 <= len(rx):
            n = (rx[i + 6] << 8) | rx[i + 7]
            apdu = rx[i + 8 : i + 8 + n]
            if apdu[:1] == b"\xe0":
                found.append(apdu[1])
            i += 8 + n
    else:
        i = rx.find(b"\xe6\xe7\x00\xe0")
        while i >= 0:
            found.append(rx[i + 4])
            i = rx.find(b"\xe6\xe7\x00\xe0", i + 1)
    return found


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("window", [1, 4])
def test_object_list_through_gbt_equals_the_plain_read(gbt_meter, transport, window):
    plain, plain_trace = _read(gbt_meter, transport, gbt=False)
    assert not _gbt_blocks(plain_trace, transport)
    listed, trace = _read(gbt_meter, transport, gbt=True, window=window)
    assert listed == plain and len(listed) >= 4
    blocks = _gbt_blocks(trace, transport)
    assert len(blocks) > 3  # the response came in GBT blocks
    assert blocks[-1] & 0x80  # the last one says so
    streamed = [bc for bc in blocks if bc & 0x40]
    if window > 1 and transport == WRAPPER:
        assert streamed  # blocks sent in a row within the window
    else:
        assert not streamed  # window 1, or HDLC: one block per acknowledgement


def test_dlms_cosem_proposes_gbt_and_still_gets_get_datablocks(meter):
    # dlms-cosem 25.1.0 proposes general-block-transfer but has no GBT APDU:
    # it also proposes block-transfer-with-get, so the meter keeps to GET
    # datablocks for it and the long read works as before.
    from interop_peers import CosemPeer

    p = CosemPeer(meter, WRAPPER, sap=16, max_pdu=CLIENT_PDU)
    try:
        p.connect()
        p.associate()
        data = p.get(15, "0.0.40.0.0.255", 2)
        p.release()
    finally:
        p.close()
    assert len(data) > 5
