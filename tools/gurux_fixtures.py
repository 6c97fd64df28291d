"""Write the Gurux XML fixtures of tests/cpython/test_gurux_import.py.

    .venv/bin/python tools/gurux_fixtures.py [OUT_DIR]   (default tests/fixtures/gurux)

gurux-dlms (a test-only peer, GPL: used as a black box through its public API,
never imported by the package) writes each file with
GXDLMSObjectCollection.save:
  collection.xml        a collection built in code: every class the import
                        maps, with values, scalers, units and access set, the
                        current association (SAP 32, LLS), and classes this
                        stack does not implement (GPRS, TCP-UDP, auto answer)
  demo_reader.xml       the demo meter as gurux reads it as the reader (SAP 32,
                        LLS, wrapper): its object list and every readable
                        attribute, as GXDLMSDirector saves a captured meter
  demo_management.xml   the same as management (SAP 1, HLS-GMAC, ciphered)
The demo files carry the meter's clock at the time they were made: the tests
do not depend on it.
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def collection(path):
    from gurux_dlms import GXDateTime
    from gurux_dlms.enums import AccessMode, Authentication, DataType, MethodAccessMode, Unit
    from gurux_dlms.objects.enums import ScriptActionType
    from gurux_dlms.objects import (
        GXDLMSActionSet,
        GXDLMSAssociationLogicalName,
        GXDLMSAutoAnswer,
        GXDLMSClock,
        GXDLMSData,
        GXDLMSDemandRegister,
        GXDLMSExtendedRegister,
        GXDLMSGprsSetup,
        GXDLMSHdlcSetup,
        GXDLMSIECLocalPortSetup,
        GXDLMSObjectCollection,
        GXDLMSProfileGeneric,
        GXDLMSRegister,
        GXDLMSRegisterMonitor,
        GXDLMSSapAssignment,
        GXDLMSScript,
        GXDLMSScriptAction,
        GXDLMSScriptTable,
        GXDLMSTcpUdpSetup,
    )

    R, RW = AccessMode.READ, AccessMode.READ_WRITE

    def only_read(obj, n):
        for i in range(1, n + 1):
            obj.setAccess(i, R)

    c = GXDLMSObjectCollection()
    a = GXDLMSAssociationLogicalName("0.0.40.0.0.255")
    a.clientSAP = 32
    a.serverSAP = 1
    a.authenticationMechanismName.mechanismId = Authentication.LOW
    a.secret = b"ABCDEFGH"
    c.append(a)
    sap = GXDLMSSapAssignment("0.0.41.0.0.255")
    c.append(sap)

    def data(ln, typ, value, writable=False):
        d = GXDLMSData(ln)
        d.value = value
        d.setDataType(2, typ)
        only_read(d, 2)
        if writable:
            d.setAccess(2, RW)
        c.append(d)
        return d

    data("0.0.42.0.0.255", DataType.OCTET_STRING, b"GRX0000000000007")
    data("0.0.96.1.0.255", DataType.OCTET_STRING, b"00000007")
    status_register = data("0.0.96.10.1.255", DataType.UINT8, 5, writable=True)
    data("0.0.96.50.0.255", DataType.INT16, -300)
    data("0.0.96.50.1.255", DataType.STRING, "hello <&>")
    data("0.0.96.50.2.255", DataType.OCTET_STRING, bytes((1, 2, 0xAB)))
    data("0.0.96.50.3.255", DataType.BOOLEAN, True)
    data("0.0.96.50.4.255", DataType.DATETIME, GXDateTime("01/31/2026 12:00:00"))
    data("0.0.96.50.5.255", DataType.UINT32, 4000000000)

    def register(ln, value, typ, scaler, unit, value_rw, reset):
        r = GXDLMSRegister(ln)
        r.value = value
        r.setDataType(2, typ)
        r.scaler = scaler  # gurux keeps the factor 10^scaler
        r.unit = unit
        only_read(r, 3)
        if value_rw:
            r.setAccess(2, RW)
        r.setMethodAccess(1, MethodAccessMode.ACCESS if reset else MethodAccessMode.NO_ACCESS)
        c.append(r)
        return r

    v = register("1.0.32.7.0.255", 2301, DataType.UINT16, 0.1, Unit.VOLTAGE, False, False)
    e = register("1.0.1.8.0.255", 123456, DataType.UINT32, 1000, Unit.ACTIVE_ENERGY, True, True)
    x = GXDLMSExtendedRegister("1.0.1.6.0.255")
    x.value = 4200
    x.setDataType(2, DataType.UINT32)
    x.scaler = 1
    x.unit = Unit.ACTIVE_POWER
    x.status = 3
    x.setDataType(4, DataType.UINT8)
    only_read(x, 5)
    c.append(x)

    clk = GXDLMSClock("0.0.1.0.0.255")
    clk.timeZone = -60
    clk.deviation = 60
    clk.enabled = True
    clk.clockBase = 1
    only_read(clk, 9)
    clk.setAccess(2, RW)
    c.append(clk)

    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    pg.capturePeriod = 900
    pg.profileEntries = 96
    pg.addCaptureObject(clk, 2, 0)
    pg.addCaptureObject(e, 2, 0)
    pg.addCaptureObject(v, 2, 0)
    only_read(pg, 8)
    pg.setAccess(4, RW)
    c.append(pg)

    dr = GXDLMSDemandRegister("1.0.1.4.0.255")
    dr.scaler = 1
    dr.unit = Unit.ACTIVE_POWER
    dr.period = 900
    dr.numberOfPeriods = 1
    only_read(dr, 9)
    c.append(dr)

    h = GXDLMSHdlcSetup("0.0.22.0.0.255")
    h.communicationSpeed = 5  # 9600 baud
    h.windowSizeTransmit = h.windowSizeReceive = 1
    h.maximumInfoLengthTransmit = h.maximumInfoLengthReceive = 256
    h.interCharachterTimeout = 30
    h.inactivityTimeout = 180
    h.deviceAddress = 18
    only_read(h, 9)
    c.append(h)

    lp = GXDLMSIECLocalPortSetup("0.0.20.0.0.255")
    lp.defaultBaudrate = 0
    lp.proposedBaudrate = 5
    lp.deviceAddress = "00000007"
    only_read(lp, 9)
    c.append(lp)

    # the monitor's scripts: status 1 above a threshold, 0 below
    st = GXDLMSScriptTable("0.0.10.0.106.255")
    for sid, status in ((1, 1), (2, 0)):
        script = GXDLMSScript()
        script.id = sid
        a = GXDLMSScriptAction()
        a.type_ = ScriptActionType.WRITE
        a.target = status_register
        a.index = 2
        a.parameter = status
        a.parameterDataType = DataType.UINT8
        script.actions.append(a)
        st.scripts.append(script)
    only_read(st, 2)
    c.append(st)

    m = GXDLMSRegisterMonitor("0.0.16.1.0.255")
    m.thresholds = [2530, 1955]
    m.monitoredValue.update(v, 2)
    act = GXDLMSActionSet()
    act.actionUp.logicalName = "0.0.10.0.106.255"
    act.actionUp.scriptSelector = 1
    act.actionDown.logicalName = "0.0.10.0.106.255"
    act.actionDown.scriptSelector = 2
    m.actions = [act, act]
    only_read(m, 4)
    c.append(m)

    # classes this stack does not implement
    c.append(GXDLMSGprsSetup("0.0.25.4.0.255"))
    c.append(GXDLMSTcpUdpSetup("0.0.25.0.0.255"))
    c.append(GXDLMSAutoAnswer("0.0.2.2.0.255"))
    c.save(path)


def demo(path, sap):
    # The demo meter served as `dlms-micro serve` does, read by gurux-dlms.
    sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
    from gurux_dlms.enums import AccessMode
    from interop_peers import WRAPPER, GuruxPeer

    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    with tempfile.TemporaryDirectory() as tmp:
        svc = ThreadedService(DemoMeter(storage=FileStorage(tmp), seed=1), host="127.0.0.1", wrapper_port=0,
                              hdlc_port=0, pty=False)
        with svc:
            p = GuruxPeer(svc, WRAPPER, sap=sap).connect()
            objs = read_all(p, AccessMode)
            p.release()
            p.close()
    objs.save(path)


def read_all(p, AccessMode):
    # the object list, then every readable attribute (a profile's capture
    # objects before the rest; its buffer is not read: rows are run-time data)
    objs = p.read_object_list()
    for o in objs:
        order = list(range(1, o.getAttributeCount() + 1))
        if int(o.objectType) == 7:
            order.remove(3)
            order.insert(1, 3)
            order.remove(2)
        for attr in order:
            if o.getAccess(attr) in (AccessMode.READ, AccessMode.READ_WRITE):
                p.read(o, attr)
    return objs


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "gurux")
    os.makedirs(out, exist_ok=True)
    collection(os.path.join(out, "collection.xml"))
    demo(os.path.join(out, "demo_reader.xml"), 32)
    demo(os.path.join(out, "demo_management.xml"), 1)
    for n in ("collection.xml", "demo_reader.xml", "demo_management.xml"):
        print(os.path.join(out, n))


if __name__ == "__main__":
    main(sys.argv)
