# The key file's suite 1/2 members (keyfile.parse): signing keys, client
# signing keys, suite 2's 32-byte keys, the trusted CA; faults named, no key
# value in a message.

import json

import pytest

from dlms_micro_cpython import keyfile

BASE = {"ek": "00" * 16, "ak": "11" * 16, "kek": "22" * 16}


def parse(**extra):
    return keyfile.parse(json.dumps(dict(BASE, **extra)))


def test_suite12_members():
    k = parse(signing_keys={"1": "ab" * 32, "2": "cd" * 48},
              client_signing_keys={"4755525558484553": "01" * 64, "4E45574845533031": "02" * 96},
              suite2_ek="33" * 32, suite2_ak="44" * 32, ca_certificate="3082 0102")
    assert k["signing_keys"] == {1: b"\xab" * 32, 2: b"\xcd" * 48}
    assert k["client_signing_keys"] == {b"GURUXHES": b"\x01" * 64, b"NEWHES01": b"\x02" * 96}
    assert (k["suite2_ek"], k["suite2_ak"]) == (b"\x33" * 32, b"\x44" * 32)
    assert k["ca_certificate"] == b"\x30\x82\x01\x02"
    assert parse(ca_certificate="-----BEGIN CERTIFICATE-----\n...")["ca_certificate"].startswith("-----BEGIN")


@pytest.mark.parametrize("extra,fault", [
    ({"signing_keys": {"3": "00" * 32}}, 'signing_keys: an object with members "1" and/or "2"'),
    ({"signing_keys": {"1": "00" * 31}}, "signing_keys.1: 32 bytes needed, 31 given"),
    ({"client_signing_keys": {"GURUX": "01" * 64}}, "(title): not a hex string"),
    ({"suite2_ek": "33" * 16}, "suite2_ek: 32 bytes needed, 16 given"),
    ({"ca_certificate": "zz"}, "ca_certificate: PEM text or the DER in hex"),
])
def test_faults_named(extra, fault):
    with pytest.raises(keyfile.KeyFileError) as ei:
        parse(**extra)
    assert fault in str(ei.value)
    assert "00" * 16 not in str(ei.value)


def test_agreement_key_members():
    # the static key agreement keys of general-ciphering (agreed keys)
    k = parse(agreement_keys={"1": "ab" * 32}, client_agreement_keys={"4755525558484553": "01" * 64})
    assert k["agreement_keys"] == {1: b"\xab" * 32}
    assert k["client_agreement_keys"] == {b"GURUXHES": b"\x01" * 64}
    for extra, fault in (({"agreement_keys": {"2": "00" * 32}}, "agreement_keys.2: 48 bytes needed, 32 given"),
                         ({"client_agreement_keys": []}, "client_agreement_keys: an object of client system title")):
        with pytest.raises(keyfile.KeyFileError) as ei:
            parse(**extra)
        assert fault in str(ei.value)
