# Meter definitions with security suites 1 and 2: "security_suite" and the
# mechanisms "high-sha256" and "high-ecdsa" per association, compiled into
# the roles (each association its own suite), and what the compiler refuses.

import copy
import sys

import pytest

from dlms_micro.meterdef import build
from dlms_micro_cpython.meterdef import DefinitionError, compile_definition

sys.path.insert(0, "tests/interop")
from test_suite12_interop import DEFINITION  # noqa: E402


def test_roles_carry_mechanism_and_suite():
    c = compile_definition(copy.deepcopy(DEFINITION))
    roles = {r.name: r for r in build.roles(c)}
    assert (roles["public"].mechanism, roles["public"].security_suite) == (0, 0)
    assert (roles["ecdsa1"].mechanism, roles["ecdsa1"].security_suite) == (7, 1)
    assert (roles["sha256"].mechanism, roles["sha256"].security_suite) == (6, 1)
    assert roles["sha256"].secret == b"hls-sha256-secret"
    assert (roles["ecdsa2"].mechanism, roles["ecdsa2"].security_suite) == (7, 2)
    assert (roles["gmac2"].mechanism, roles["gmac2"].security_suite) == (5, 2)
    # a suite 0 association keeps the 6-field form definitions had before
    assert [len(r) for r in c.ROLES] == [6, 7, 7, 7, 7, 7]
    # each association's own security_policy
    assert (roles["auth1"].policy, roles["ecdsa1"].policy, roles["public"].policy) == (0x24, 0x6C, 0)


@pytest.mark.parametrize(
    "change,fault",
    [
        ({"security_suite": 3}, "security_suite: 0, 1 or 2, not 3"),
        ({"security_suite": True}, "security_suite: 0, 1 or 2"),
        ({"security_suite": 0}, "high-ecdsa authentication needs security_suite 1 or 2"),
    ],
)
def test_bad_suites_refused(change, fault):
    d = copy.deepcopy(DEFINITION)
    d["associations"]["ecdsa1"].update(change)
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d)
    assert fault in str(ei.value)


def test_high_sha256_needs_its_secret():
    d = copy.deepcopy(DEFINITION)
    del d["associations"]["sha256"]["password"]
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d)
    assert "password: required with high-sha256 authentication" in str(ei.value)
