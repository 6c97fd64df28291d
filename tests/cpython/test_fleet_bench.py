# The CPU-per-GET benchmark's reference (tools/bench_fleet.py): gurux-dlms's
# own server, patched in the harness (docs/compatibility.md), must keep
# answering right, or the ratio `make bench` prints means nothing. Its AARE
# is parsed and its GET answers decoded (the ciphered ones decrypted and
# checked) by gurux's client; the fleet answers the same ciphered request
# bytes with the same value. No timing is asserted: the benchmark prints it.

import tempfile

import pytest
from tool_module import tool_module

bf = tool_module("bench_fleet")
NAME = b"DMI0000012345678"
PLAIN_ANSWER = "0001000100100016c401c1000910" + NAME.hex()


@pytest.fixture(scope="module")
def meter0():
    from dlms_micro_cpython.fleet import DEMO_MASTER, fleet_keys, identity
    from dlms_micro_cpython.fleet_cli import load_definition

    title = identity(load_definition(None), 0).system_title
    return title, fleet_keys(DEMO_MASTER, title)


def test_gurux_reference_server_answers_a_plain_get():
    g, port = bf.start_gurux("plain")
    try:
        _cpu, _wall, reply, value = bf.plain_cpu(g.pid, port, 5)
    finally:
        said = bf.stop_gurux(g)
    assert reply.hex() == PLAIN_ANSWER, said
    assert bytes(value) == NAME


def test_gurux_reference_and_the_fleet_answer_the_same_ciphered_gets(meter0):
    title, keys = meter0
    reqs, client = bf.ciphered_requests(title, keys, 8, 1000)
    assert all(q[8] == 0xDB for q in reqs)  # general-glo-ciphering, suite 0
    g, port = bf.start_gurux("ciphered", title.hex(), bf.CLIENT_TITLE.hex(), keys["ek"].hex(), keys["ak"].hex())
    try:
        s = bf.connect(port)
        _cpu, _wall, reply = bf.run_gets(g.pid, s, reqs, warm=4)
        s.close()
    finally:
        said = bf.stop_gurux(g)
    assert reply[8] == 0xDB, said
    assert bytes(bf.gurux_value(client, reply)) == NAME
    base = bf.free_base(1)
    with tempfile.TemporaryDirectory(prefix="test-fleet-bench-") as data:
        p, _lines = bf.start_fleet(1, base, 1, data)
        try:
            s = bf.fleet_association(base, keys)
            _cpu, _wall, reply = bf.run_gets(p.pid, s, reqs, warm=4)
            s.close()
        finally:
            bf.stop(p)
    _, client = bf.ciphered_requests(title, keys, 0, 1000)
    assert bytes(bf.gurux_value(client, reply)) == NAME
