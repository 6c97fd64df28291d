# A key file's "token_key" (the prepayment Token gateway's key, 16 bytes):
# parsed, named in errors without its value, and the key a simulated meter's
# Token gateway takes instead of the demo-only one (a board gets it as the
# "token.key" record: tools/provision.py, tests/firmware/
# test_provision_agreement_token.py).

import json

import pytest

from dlms_micro.cosem.token_gateway import TokenState
from dlms_micro_cpython import keyfile
from dlms_micro_cpython.meterdef import compile_definition
from dlms_micro_cpython.simulator import DEMO_TOKEN_KEY, SimulatedMeter

KEY = bytes(range(0xA0, 0xB0))
BASE = {"ek": "00" * 16, "ak": "11" * 16, "kek": "22" * 16}


def token_key_of(keys):
    with open("meters/demo.json") as f:
        c = compile_definition(json.load(f))
    sim = SimulatedMeter(c, keys=keys, wall_clock=lambda: 1796126400)
    states = [s for s in sim.meter.state if isinstance(s, TokenState)]
    assert len(states) == 1
    return states[0].key


def test_token_key_parsed_and_used():
    k = keyfile.parse(json.dumps(dict(BASE, token_key=KEY.hex())))
    assert k["token_key"] == KEY
    assert token_key_of(k) == KEY
    assert token_key_of(keyfile.parse(json.dumps(BASE))) == DEMO_TOKEN_KEY


def test_bad_token_key_named_without_its_value():
    with pytest.raises(keyfile.KeyFileError) as ei:
        keyfile.parse(json.dumps(dict(BASE, token_key="AB" * 17)))
    assert "token_key: 16 bytes needed, 17 given" in str(ei.value) and "AB" * 17 not in str(ei.value)
