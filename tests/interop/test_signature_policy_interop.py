# A meter definition whose HLS-ECDSA association (security suite 1) names
# "digitally-signed-request" in its security_policy, served by `api.serve`
# and driven by gurux-dlms: the association opens (AARQ, HLS-ECDSA pass 3/4)
# but gurux's GET, ciphered and not signed, is refused with the
# exception-response D8 01 01 and a log line, as with Role(policy=...).
# The same association without the bit serves the GET.

import contextlib
import copy

import pytest
from interop_peers import WRAPPER
from test_suite12_interop import DEFINITION, KEYS, connect, gurux_peer, log, read_ldn_and_energy  # noqa: F401

from dlms_micro_cpython import api

SIGNED = copy.deepcopy(DEFINITION)
SIGNED["associations"]["ecdsa1"]["security_policy"] = ["authenticated-encrypted", "digitally-signed-request"]


@pytest.fixture(scope="module")
def signed_meter():
    with api.serve(SIGNED, keys=KEYS) as m:
        yield m


def test_gurux_unsigned_get_refused_where_signed_requests_required(signed_meter, log):  # noqa: F811
    from gurux_dlms.objects import GXDLMSData

    p = connect(gurux_peer(signed_meter, WRAPPER, "ecdsa1"))
    try:
        with pytest.raises(Exception), contextlib.redirect_stdout(None):
            p.read(GXDLMSData("0.0.42.0.0.255"), 2)
        # the answer to the GET (glo-get-request 0xC8, not general-signing 0xDF)
        assert p.sent_apdus()[-1][8] == 0xC8
        assert bytes.fromhex(p.trace[-1][1])[8:] == bytes.fromhex("D80101")
    finally:
        p.close()
    assert "unsigned request 0xc8 where the security policy requires digitally signed requests" in " ".join(log), log


def test_gurux_served_on_the_association_without_the_bit(signed_meter):
    # the definition's other HLS-ECDSA association (auth1: authenticated only)
    from gurux_dlms.enums import Security

    p = gurux_peer(signed_meter, WRAPPER, "auth1")
    p.client.ciphering.security = Security.AUTHENTICATION
    connect(p)
    try:
        assert read_ldn_and_energy(p)[1] == 1234
    finally:
        p.close()
