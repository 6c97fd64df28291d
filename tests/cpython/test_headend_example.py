# The example test of README.md ("Test your head-end against it"), run as it
# is: tests/cpython/test_pytest_plugin.py checks that the README shows this
# code from `import socket` to the end.
import socket

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSRegister


def exchange(sock, client, messages):
    # Send each message of one request; gurux parses the meter's reply.
    reply = GXReplyData()
    for message in messages:
        sock.sendall(message)
        data = GXByteBuffer()
        while not client.getData(data, reply, GXReplyData()):
            data.set(sock.recv(4096))
    return reply


@pytest.mark.dlms_meter(history=1)  # the demo meter, a day of profiles and events behind it
def test_head_end_reads_the_energy_register(dlms_meter):
    dlms_meter.set_value("1.0.1.8.0.255", 12345)  # active energy import, Wh
    reader = dlms_meter.client("reader")  # client SAP 32, LLS with its password
    client = GXDLMSClient(True, reader.sap, dlms_meter.logical_address, Authentication.LOW,
                          reader.password, InterfaceType.WRAPPER)
    with socket.create_connection(dlms_meter.wrapper_address, timeout=5) as sock:
        client.parseAareResponse(exchange(sock, client, client.aarqRequest()).data)
        energy = exchange(sock, client, client.read(GXDLMSRegister("1.0.1.8.0.255"), 2)).value
        exchange(sock, client, client.releaseRequest())
    assert 12345 <= energy < 12400  # the simulated household keeps drawing power
    assert len(dlms_meter.profile_rows("1.0.99.1.0.255")) >= 96  # a row per quarter hour
    assert dlms_meter.written() == []  # the reader wrote nothing
