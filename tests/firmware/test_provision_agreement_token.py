# tools/provision.py with a key file naming suite 1 key agreement keys (the
# meter's "agreement_keys", the head-ends' "client_agreement_keys") and the
# prepayment Token gateway's "token_key": written to the board's storage
# (a stand-in board: tests/firmware/fake_mpremote.py) as the records the
# board's code reads ("sec.agree1", "sec.kaclients1", "token.key"), never
# printed; the board's boot (dlms_micro_mp.certstore.attach) makes them the
# meter's general-ciphering material, and the real unix firmware of the
# prepaid board (fw_main --keys none: nothing of its own) accepts a token
# made with the provisioned key and refuses one made with the demo key.

import json
import os
import sys

import pytest
from conftest import REPO
from fw_board import start_board
from interop_peers import DEMO_KEYS, WRAPPER, GuruxPeer
from test_board_security import _session
from test_provision import provision

from dlms_micro.security import ecc

SIGN_D = bytes(31) + b"\x2a"
AGREE_D = bytes(range(1, 33))
CLIENT_KA_D = bytes(range(2, 34))
HES = b"HES\x00\x00\x00\x00\x07"
TOKEN_KEY = bytes(range(0xA0, 0xB0))
PREPAID = "esp32_devkitc_prepaid"
GATEWAY, ACCOUNT = "0.0.19.40.0.255", "0.0.19.0.0.255"


def key_file(tmp_path, **extra):
    doc = {"ek": DEMO_KEYS["ek"].hex(), "ak": DEMO_KEYS["ak"].hex(), "kek": DEMO_KEYS["kek"].hex(),
           "system_title": "444D490000BC614E"}
    doc.update(extra)
    kf = tmp_path / "meter.json"
    kf.write_text(json.dumps(doc))
    return kf


def board_modules():
    sys.path.insert(0, os.path.join(REPO, "ports", "micropython"))
    try:
        from dlms_micro_mp import apps, certstore
        from dlms_micro_mp.storage import FlashStorage
    finally:
        sys.path.remove(os.path.join(REPO, "ports", "micropython"))
    return apps, certstore, FlashStorage


def test_provision_writes_key_agreement_keys_and_the_token_key(tmp_path):
    client_pub = ecc.public_key(ecc.P256, CLIENT_KA_D)
    kf = key_file(tmp_path, signing_keys={"1": SIGN_D.hex()}, agreement_keys={"1": AGREE_D.hex()},
                  client_agreement_keys={HES.hex(): client_pub.hex()}, token_key=TOKEN_KEY.hex())
    root = tmp_path / "board"
    root.mkdir()
    r = provision(root, "--keys", str(kf))
    assert r.returncode == 0, r.stdout + r.stderr
    out = (r.stdout + r.stderr + (root / "calls").read_text()).lower()
    for secret in (SIGN_D, AGREE_D, TOKEN_KEY):
        assert secret.hex() not in out
    # (no client signing keys in the file: no sec.clients1)
    assert sorted(os.listdir(root / "data")) == ["sec.agree1", "sec.kaclients1", "sec.keys", "sec.sign1",
                                                 "sec.title", "token.key"]
    apps, certstore, FlashStorage = board_modules()
    st = FlashStorage(str(root / "data"))
    assert st.get("sec.agree1") == AGREE_D and st.get("sec.kaclients1") == HES + client_pub
    assert apps.env(st).token_key == TOKEN_KEY  # what the board's Token gateway gets
    # what the board's boot makes of them
    from dlms_micro.meter import Meter, Role

    class Ks:
        storage = st
        system_title = bytes.fromhex("444D490000BC614E")

    class Defn:
        ROLES = (("m", 2, 7, b"", 0, 3, 1),)

    m = Meter((), (Role(2, 7, security_suite=1),), [], wall_clock=lambda: 1796126400)
    m.keys = Ks()
    certstore.attach((m,), Ks(), Defn())
    assert m.signing.agreement_pair.public == ecc.public_key(ecc.P256, AGREE_D)
    assert m.signing.client_agreement_key(HES) == client_pub
    # the certificate store's key agreement key is the same pair (a
    # certificate request for it certifies the provisioned key)
    assert m.cert_store._own_key(1, certstore.AGREEMENT) is m.signing.agreement_pair


def test_provision_refuses_a_bad_agreement_key_naming_no_key(tmp_path):
    off_curve = (bytes(63) + b"\x01").hex()
    kf = key_file(tmp_path, client_agreement_keys={HES.hex(): off_curve})
    root = tmp_path / "board"
    root.mkdir()
    r = provision(root, "--keys", str(kf))
    assert r.returncode == 1 and "suite 1 keys:" in r.stderr and off_curve not in r.stderr
    assert not (root / "data").exists()
    kf = key_file(tmp_path, token_key="00" * 15)
    r = provision(root, "--keys", str(kf))
    assert r.returncode == 1 and "token_key: 16 bytes needed, 15 given" in r.stderr


def test_provisioned_token_key_is_the_prepaid_boards(tmp_path):
    from gurux_dlms.enums import DataType
    from gurux_dlms.objects import GXDLMSAccount, GXDLMSTokenGateway

    from dlms_micro.cosem.token_gateway import make_token

    root = tmp_path / "board"
    root.mkdir()
    r = provision(root, "--keys", str(key_file(tmp_path, token_key=TOKEN_KEY.hex())))
    assert r.returncode == 0, r.stderr
    m = start_board(PREPAID, str(root / "data"), str(tmp_path), keys="none",
                    extra=("--pins", str(tmp_path / "pins")))
    try:
        assert m.ready["keys"] == "ok"

        def token(key, tid):
            def fn(p):
                gw = GXDLMSTokenGateway(GATEWAY)
                before = int(p.read(GXDLMSAccount(ACCOUNT), 5))
                try:
                    p.method(p.client.method(gw, 1, make_token(key, tid, 5000), DataType.OCTET_STRING))
                except Exception as e:  # noqa: BLE001 (gurux raises the action-result)
                    return type(e).__name__, before, int(p.read(GXDLMSAccount(ACCOUNT), 5))
                return "accepted", before, int(p.read(GXDLMSAccount(ACCOUNT), 5))

            return _session(GuruxPeer(m, WRAPPER, sap=1), fn)

        verdict, before, after = token(b"TOKEN-DEMO-ONLY!", 1)
        assert verdict != "accepted" and after == before  # the demo key is not this board's
        verdict, before, after = token(TOKEN_KEY, 2)
        assert verdict == "accepted" and after > before, (verdict, before, after)
    finally:
        m.stop()
    assert TOKEN_KEY.hex() not in m.log_text().lower()


if __name__ == "__main__":
    pytest.main([__file__])
