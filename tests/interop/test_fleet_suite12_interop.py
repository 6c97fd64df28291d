# A fleet of a definition with security suite 1 and 2 associations
# (HLS-ECDSA suite 1 on client SAP 1): every meter's signing key pair derives from the fleet's
# master key (fleet.py KEYS, docs/fleet.md), the head-end's public signing
# key comes from the fleet key file's "client_signing_keys". gurux-dlms
# associates with HLS-ECDSA with two distinct meters, each checked with the
# public key `dlms-micro fleet keys --index I` prints for it, reads the
# meter's own logical device name and releases; meter 1's signature does
# not verify with meter 0's public key; a restarted fleet has the same keys.
#
# gurux-dlms quirk (docs/compatibility.md): the public half of
# ciphering.signingKeyPair is what it checks the meter's f(CtoS) with.

import contextlib
import io
import json
import traceback

import pytest
from interop_peers import GURUX_TITLE, WRAPPER, GuruxPeer
from test_fleet_interop import FleetUnderTest, MeterAddress
from test_suite12_interop import CLIENT_D1, DEFINITION  # the suites 1/2 interop meter, its head-end's key

from dlms_micro.security import ecc

MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
COUNT = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet-suite1")
    meter = d / "meter.json"
    meter.write_text(json.dumps(DEFINITION))
    keys = d / "keys.json"
    keys.write_text(json.dumps({"master": MASTER.hex(), "client_signing_keys": {
        GURUX_TITLE.hex(): ecc.public_key(ecc.P256, CLIENT_D1).hex()}}))
    return d, str(meter), str(keys)


def running_fleet(meter_path, keys_path, data_dir):
    from dlms_micro_cpython.fleet_cli import load_definition, load_key_file

    kf = load_key_file(keys_path)
    return FleetUnderTest(data_dir, load_definition(meter_path), COUNT, master=kf["master"],
                          client_signing_keys=kf["client_signing_keys"])


def printed_keys(meter_path, keys_path, i):
    # what `dlms-micro fleet keys --index I` prints
    from dlms_micro_cpython import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["fleet", "keys", "--index", str(i), "--meter", meter_path, "--keys", keys_path]) == 0
    return json.loads(out.getvalue())


def ecdsa_peer(fleet, i, meter_pub, invocation_counter=1):
    from gurux_dlms.ecdsa import GXPrivateKey, GXPublicKey
    from gurux_dlms.enums import Authentication
    from gurux_dlms.objects.enums import SecuritySuite

    p = GuruxPeer(MeterAddress(fleet, i), WRAPPER, sap=1, auth="high-gmac", keys=fleet.fleet.keys(i),
                  invocation_counter=invocation_counter)
    c = p.client
    c.authentication = Authentication.HIGH_ECDSA
    c.ciphering.securitySuite = SecuritySuite.SUITE_1
    with contextlib.redirect_stdout(None):  # gurux prints the private key it is given
        c.ciphering.signingKeyPair = (GXPublicKey.fromRawBytes(b"\x04" + meter_pub),
                                      GXPrivateKey.fromRawBytes(CLIENT_D1))
    return p


def read_ldn(p):
    from gurux_dlms.objects import GXDLMSData

    with contextlib.redirect_stdout(None):
        p.connect()
        try:
            return bytes(p.read(GXDLMSData("0.0.42.0.0.255"), 2))
        finally:
            p.close()


def test_two_meters_each_sign_with_their_own_derived_key(files):
    d, meter_path, keys_path = files
    printed = [printed_keys(meter_path, keys_path, i) for i in (0, 1)]
    pubs = [bytes.fromhex(k["signing_public_key_suite1"]) for k in printed]
    assert pubs[0] != pubs[1]
    # suite 2 associations too: a P-384 public key and AES-256 keys per meter
    assert len(bytes.fromhex(printed[0]["signing_public_key_suite2"])) == 96
    assert len(bytes.fromhex(printed[0]["suite2_ek"])) == 32
    assert printed[0]["suite2_ek"] != printed[1]["suite2_ek"]
    fut = running_fleet(meter_path, keys_path, d / "data")
    try:
        for i in (0, 1):
            ident = fut.fleet.identity(i)
            assert printed[i]["system_title"] == ident.system_title.hex().upper()
            assert read_ldn(ecdsa_peer(fut, i, pubs[i])) == ident.name
            assert fut.fleet.meter(i).meter.signing[1].key_pair.public == pubs[i]  # {suite: Signing}
        # meter 1's f(CtoS) does not verify with meter 0's public key: gurux
        # refuses the association while checking it (its error path then
        # raises UnboundLocalError, a gurux bug: the frame is what counts)
        with pytest.raises(Exception) as e:
            read_ldn(ecdsa_peer(fut, 1, pubs[0], invocation_counter=100))
        assert "parseApplicationAssociationResponse" in [f.name for f in traceback.extract_tb(e.tb)]
    finally:
        fut.stop()
    # the same keys after a restart (derived, not generated and stored)
    fut = running_fleet(meter_path, keys_path, d / "data")
    try:
        assert read_ldn(ecdsa_peer(fut, 1, pubs[1], invocation_counter=200)) == fut.fleet.identity(1).name
    finally:
        fut.stop()
