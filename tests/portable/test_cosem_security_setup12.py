# Security setup v1 for suites 1 and 2 (dlms_micro/cosem/security_setup12.py)
# over a certificate store double: attribute 3 is the association's suite,
# attribute 6 the store's certificates, methods 4-8 reach the store with
# their parameters decoded, a store refusal (CertError) is other-reason and
# a log line, wrong parameter types type-unmatched; key_agreement (3) is not
# served. Runs under pytest and MicroPython.

from cosem_support import act, get_ok
from dlms_micro.cosem import base
from dlms_micro.cosem.security_setup12 import CertError
from dlms_micro.meter import MECH_HLS_GMAC, Role
from support import unhex
from test_cosem_security_setup import setup


class Store:
    def __init__(self):
        self.calls = []
        self.refuse = None

    def infos(self):
        return [(0, 0, b"\x10\x92", b"ISSUER", b"SUBJECT", b"")]

    def _call(self, *what):
        self.calls.append(what)
        if self.refuse:
            raise CertError(self.refuse)

    def generate_key_pair(self, ktype, suite):
        self._call("generate", ktype, suite)

    def certificate_request(self, ktype, suite):
        self._call("request", ktype, suite)
        return b"CSR-DER"

    def import_certificate(self, der):
        self._call("import", der)

    def export_by_entity(self, entity, ktype, title):
        self._call("export-entity", entity, ktype, title)
        return b"CERT-DER" if entity == 0 else None

    def export_by_serial(self, serial, issuer):
        self._call("export-serial", serial, issuer)
        return b"CERT-DER"

    def remove_by_entity(self, entity, ktype, title):
        self._call("remove-entity", entity, ktype, title)
        return True

    def remove_by_serial(self, serial, issuer):
        self._call("remove-serial", serial, issuer)
        return False


def setup12():
    ctx, o = setup()
    ctx.meter.roles = (Role(1, MECH_HLS_GMAC, ciphered=True, security_suite=2),)
    ctx.meter.cert_store = Store()
    lines = []
    ctx.meter.log = lines.append
    return ctx, o, ctx.meter.cert_store, lines


BY_ENTITY = "0202 1600 0203 1600 1600 0908 444D490000BC614E"
BY_SERIAL = "0202 1601 0202 09021092 0906495353554552"


def test_suite_and_certificates_attributes():
    ctx, o, store, lines = setup12()
    assert get_ok(ctx, o, 3) == unhex("16 02")  # the association's suite
    assert get_ok(ctx, o, 6) == unhex(
        "0101 0206 1600 1600 09021092 0906495353554552 09075355424A454354 0900")


def test_methods_reach_the_store():
    ctx, o, store, lines = setup12()
    assert act(ctx, o, 4, "1600") == (base.SUCCESS, b"")
    assert act(ctx, o, 5, "1600") == (base.SUCCESS, unhex("0907") + b"CSR-DER")
    assert act(ctx, o, 6, "0903414243") == (base.SUCCESS, b"")
    assert act(ctx, o, 7, BY_ENTITY) == (base.SUCCESS, unhex("0908") + b"CERT-DER")
    assert act(ctx, o, 7, BY_SERIAL) == (base.SUCCESS, unhex("0908") + b"CERT-DER")
    assert act(ctx, o, 8, BY_ENTITY) == (base.SUCCESS, b"")
    assert act(ctx, o, 8, BY_SERIAL) == (base.OBJECT_UNAVAILABLE, b"")
    title = unhex("444D490000BC614E")
    assert store.calls == [
        ("generate", 0, 2), ("request", 0, 2), ("import", b"ABC"),
        ("export-entity", 0, 0, title), ("export-serial", b"\x10\x92", b"ISSUER"),
        ("remove-entity", 0, 0, title), ("remove-serial", b"\x10\x92", b"ISSUER"),
    ]


def test_refusals():
    ctx, o, store, lines = setup12()
    store.refuse = "expired on 2026-01-01"
    assert act(ctx, o, 6, "0903414243") == (base.OTHER_REASON, b"")
    assert lines == ["Security setup: method 6 refused: expired on 2026-01-01"]
    store.refuse = None
    store.calls = []
    assert act(ctx, o, 4, "0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 6, "1600")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 7, "0202 1602 0200")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 6)[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 3, "0100")[0] == base.READ_WRITE_DENIED  # key_agreement: not served
    assert store.calls == []
