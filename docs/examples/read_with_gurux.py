# Read the demo meter (`dlms-micro serve`) with gurux-dlms over the TCP wrapper:
# the invocation counter as the public client, then, as management (HLS-GMAC,
# security suite 0, the demo keys), the energy register and the last day of the
# load profile.   python read_with_gurux.py [PORT]      (pip install gurux-dlms)
# The meter accepts each client invocation counter once (replays are refused),
# so this client keeps its own in a file and goes on from there next time.
import datetime
import os
import socket
import sys

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects import GXDLMSData, GXDLMSProfileGeneric, GXDLMSRegister
from gurux_dlms.secure import GXDLMSSecureClient

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 4059
COUNTER_FILE = "gurux-invocation-counter.txt"  # this client's next invocation counter


def exchange(client, sock, packets):
    # send each message (and ask for the next blocks); the last reply
    reply = GXReplyData()
    for data in packets if isinstance(packets, list) else [packets]:
        reply.clear()
        while True:
            sock.sendall(data)
            buf, notify = GXByteBuffer(), GXReplyData()
            while not client.getData(buf, reply, notify):
                buf.set(sock.recv(4096))
            if not reply.isMoreData():
                break
            data = client.receiverReady(reply)
    if reply.error:
        raise RuntimeError("the meter refused: error %d" % reply.error)
    return reply


def session(client, work):
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as sock:
        client.parseAareResponse(exchange(client, sock, client.aarqRequest()).data)
        if client.isAuthenticationRequired:  # HLS: pass 3 and 4
            client.parseApplicationAssociationResponse(
                exchange(client, sock, client.getApplicationAssociationRequest()).data)
        result = work(lambda packets: exchange(client, sock, packets))
        exchange(client, sock, client.releaseRequest())
        return result


# 1. the public client (SAP 16) reads the meter's invocation counter
public = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
counter = GXDLMSData("0.0.43.1.0.255")
session(public, lambda x: public.updateValue(counter, 2, x(public.read(counter, 2)).value))
print("meter's invocation counter:", counter.value)

# 2. management (SAP 1): HLS-GMAC, every APDU authenticated and encrypted
mgmt = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
mgmt.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
mgmt.ciphering.systemTitle = b"GRX00001"
mgmt.ciphering.blockCipherKey = bytes.fromhex("000102030405060708090A0B0C0D0E0F")  # demo-only keys
mgmt.ciphering.authenticationKey = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
mgmt.ciphering.invocationCounter = int(open(COUNTER_FILE).read()) if os.path.exists(COUNTER_FILE) else 1


def read_energy_and_profile(x):
    energy = GXDLMSRegister("1.0.1.8.0.255")
    for attr in (3, 2):  # scaler and unit first
        mgmt.updateValue(energy, attr, x(mgmt.read(energy, attr)).value)
    lp = GXDLMSProfileGeneric("1.0.99.1.0.255")
    mgmt.updateValue(lp, 3, x(mgmt.read(lp, 3)).value)  # the columns, to decode the rows
    end = datetime.datetime.now(datetime.timezone.utc)
    reply = x(mgmt.readRowsByRange(lp, end - datetime.timedelta(days=1), end))
    mgmt.updateValue(lp, 2, reply.value)
    return energy, lp


try:
    energy, lp = session(mgmt, read_energy_and_profile)
except Exception as e:
    sys.exit("management association failed (%s): if this client title used higher invocation counters before, "
             "write a higher one into %s" % (e, COUNTER_FILE))
finally:
    with open(COUNTER_FILE, "w") as f:  # gurux counted up one per message sent
        f.write(str(mgmt.ciphering.invocationCounter))
print("active energy import: %s (times %s, unit %d)" % (energy.value, energy.scaler, int(energy.unit)))
print("load profile rows of the last day:", len(lp.buffer))
