# Read the demo meter (`dlms-micro serve`) with dlms-cosem over the TCP wrapper:
# the invocation counter as the public client, then, as management (HLS-GMAC,
# security suite 0, the demo keys), the energy register and the last day of
# the load profile.   python read_with_dlms_cosem.py [PORT]    (pip install dlms-cosem)
# The meter accepts each client invocation counter once (replays are refused),
# so this client keeps its own in a file and goes on from there next time.
import datetime
import logging
import os
import sys

import structlog

from dlms_cosem import cosem, enumerations, security
from dlms_cosem.client import DlmsClient
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.io import BlockingTcpIO, TcpTransport
from dlms_cosem.utils import parse_as_dlms_data

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # it logs every APDU
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 4059
COUNTER_FILE = "dlms-cosem-invocation-counter.txt"  # this client's next invocation counter


def attribute(class_id, obis, attr):
    return cosem.CosemAttribute(interface=enumerations.CosemInterface(class_id),
                                instance=cosem.Obis.from_string(obis), attribute=attr)


def transport(sap):
    return TcpTransport(client_logical_address=sap, server_logical_address=1,
                        io=BlockingTcpIO(host="127.0.0.1", port=PORT, timeout=10), timeout=10)


# 1. the public client (SAP 16) reads the meter's invocation counter
public = DlmsClient(transport=transport(16), authentication=security.NoSecurityAuthentication())
with public.session() as c:
    meter_counter = parse_as_dlms_data(c.get(attribute(1, "0.0.43.1.0.255", 2)))
print("meter's invocation counter:", meter_counter)

# 2. management (SAP 1): HLS-GMAC, every APDU authenticated and encrypted
own = int(open(COUNTER_FILE).read()) if os.path.exists(COUNTER_FILE) else 1
mgmt = DlmsClient(
    transport=transport(1),
    authentication=security.HighLevelSecurityGmacAuthentication(challenge_length=32),
    encryption_key=bytes.fromhex("000102030405060708090A0B0C0D0E0F"),  # demo-only keys
    authentication_key=bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"),
    client_system_title=b"DLC00001",
    client_initial_invocation_counter=own,
    meter_initial_invocation_counter=meter_counter - 1,  # the meter's next one is above this
)
end = datetime.datetime.now(datetime.timezone.utc)
last_day = RangeDescriptor(
    restricting_object=CaptureObject(cosem_attribute=attribute(8, "0.0.1.0.0.255", 2)),
    from_value=end - datetime.timedelta(days=1), to_value=end)
try:
    with mgmt.session() as c:
        energy = parse_as_dlms_data(c.get(attribute(3, "1.0.1.8.0.255", 2)))
        scaler, unit = parse_as_dlms_data(c.get(attribute(3, "1.0.1.8.0.255", 3)))
        rows = parse_as_dlms_data(c.get(attribute(7, "1.0.99.1.0.255", 2), access_descriptor=last_day))
except Exception as e:
    sys.exit("management association failed (%r): if this client title used higher invocation counters before, "
             "write a higher one into %s" % (e, COUNTER_FILE))
finally:
    with open(COUNTER_FILE, "w") as f:  # one up per message sent
        f.write(str(mgmt.dlms_connection.client_invocation_counter + 1))
print("active energy import: %s (scaler %s, unit %s)" % (energy, scaler, unit))
print("load profile rows of the last day:", len(rows))
