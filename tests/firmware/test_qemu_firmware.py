# The Cortex-M3 firmware in QEMU (bare metal, 100 KiB heap, stack frozen):
# the board's meter speaks HDLC on the emulated UART, which QEMU puts on a
# pseudo-terminal; gurux-dlms and dlms-cosem read it through pyserial.

from interop_peers import HDLC_PTY, CosemPeer, GuruxPeer

CLOCK = "0.0.1.0.0.255"
ENERGY_IMPORT = "1.0.1.8.0.255"


def test_qemu_meter_boots_in_its_100k_heap(qemu_meter):
    used, free = int(qemu_meter.ready["heap_used"]), int(qemu_meter.ready["heap_free"])
    print("qemu firmware: heap after boot %d B used, %d B free" % (used, free))
    assert used + free <= 102400 and free > 40000


def test_gurux_reads_the_qemu_meter_over_the_uart(qemu_meter):
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister

    p = GuruxPeer(qemu_meter, HDLC_PTY, sap=32)
    try:
        p.connect()
        objs = p.read_object_list()
        assert CLOCK in [o.logicalName for o in objs]
        assert p.read(GXDLMSClock(CLOCK), 2) is not None
        reg = GXDLMSRegister(ENERGY_IMPORT)
        p.read(reg, 3)
        assert p.read(reg, 2) == 0
        p.release()
        p.disconnect()
    except Exception:
        print(p.trace_text())
        raise
    finally:
        p.close()


def test_dlms_cosem_reads_the_qemu_meter_over_the_uart(qemu_meter):
    from dlms_cosem import enumerations

    p = CosemPeer(qemu_meter, HDLC_PTY, sap=16)
    try:
        p.connect()
        p.associate()
        assert p.get(enumerations.CosemInterface.CLOCK, CLOCK, 2) is not None
        p.release()
    finally:
        p.disconnect()
        p.close()
