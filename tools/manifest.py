# MicroPython manifest: freeze dlms_micro into a firmware image.
#
# A frozen module runs from flash: its bytecode and constants cost no heap,
# which on a 100 KiB ESP32 is the difference between fitting and not.
#
# Stand-alone, for a stock board plus dlms_micro (all layers):
#
#     cd micropython/ports/esp32
#     make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/dlms_micro/tools/manifest.py
#
# From a board's own manifest.py, with only the layers the board uses:
#
#     include("$(PORT_DIR)/boards/manifest.py")
#     include("/path/to/dlms_micro/tools/manifest.py",
#             layers="core,hdlc,security,register,clock",
#             port_manifest=False, table="/path/to/meter_table.py")
#
# `make firmware` (tools/firmware/build.py) builds the unix and qemu ports
# through this same file: it writes a two-line manifest that include()s it
# with port_manifest=False, the board's table and an entry point in modules.
#
# Options (keyword arguments of include()):
#   layers         comma-separated short names from tools/dlms_packages.py
#                  (core, hdlc, wrapper, iec21, security, data, clock, register,
#                  local-port, hdlc-setup, security-setup) or "all" (default:
#                  every module of dlms_micro/); dependencies are added
#   port_manifest  include $(PORT_DIR)/boards/manifest.py first (default True,
#                  which FROZEN_MANIFEST=this-file needs: it replaces the port's
#                  own manifest); pass False when the including manifest has
#                  already done it
#   table          a .py module (the meter's object table) to freeze as well
#   port           freeze the MicroPython port package dlms_micro_mp
#                  (ports/micropython/: main loop, UART/TCP ports, flash
#                  storage, board builder; default True)
#   viper          also freeze ports/micropython/ghash_viper.py and
#                  crc16_viper.py (GHASH and CRC-16 in viper: native code,
#                  so only for ports whose mpy-cross flags name an
#                  architecture, e.g. -march=armv7m or xtensawin; default
#                  False); the port's start-up code installs them
#   modules        comma-separated .py files frozen as top-level modules:
#                  an entry point, a board definition compiled to Python
#   opt            mpy-cross optimisation level (default: none, asserts kept)
#
# MicroPython runs a manifest with its own folder as the working directory,
# so relative paths below are relative to tools/.

import os
import sys

options.defaults(layers="all", port_manifest=True, table=None, port=True, viper=False,
                 modules="", opt=None)

# tools/ is not put on sys.path (tools/micropython/ would shadow a module name)
if "dlms_packages" in sys.modules:
    dlms_packages = sys.modules["dlms_packages"]
else:
    import importlib.util
    _spec = importlib.util.spec_from_file_location(
        "dlms_packages", os.path.join(os.getcwd(), "dlms_packages.py"))
    dlms_packages = importlib.util.module_from_spec(_spec)
    sys.modules["dlms_packages"] = dlms_packages
    _spec.loader.exec_module(dlms_packages)

if options.port_manifest:
    include("$(PORT_DIR)/boards/manifest.py")

metadata(description="dlms_micro: DLMS/COSEM meter-side stack",
         version=dlms_packages.VERSION)

_names = ([n.strip() for n in options.layers.split(",") if n.strip()]
          if options.layers != "all" else list(dlms_packages.PACKAGES))
_files = []
for _name in dlms_packages.closure(_names):
    for _mod in dlms_packages.modules(_name):
        _files.append(_mod[len("dlms_micro/"):])
if options.layers == "all":
    # every module of the package, also one no layer lists yet (a board
    # that freezes everything must not stop at boot with ImportError)
    for _dir, _subdirs, _names_in in os.walk(os.path.join("..", "dlms_micro")):
        _subdirs[:] = sorted(d for d in _subdirs if d != "__pycache__")
        for _f in sorted(_names_in):
            _rel = os.path.relpath(os.path.join(_dir, _f), os.path.join("..", "dlms_micro"))
            _rel = _rel.replace(os.sep, "/")
            if _f.endswith(".py") and _rel not in _files:
                _files.append(_rel)
package("dlms_micro", files=_files, base_path="..", opt=options.opt)

_PORT = os.path.join("..", "ports", "micropython")
if options.port:
    package("dlms_micro_mp", base_path=_PORT, opt=options.opt,
            files=sorted(f for f in os.listdir(os.path.join(_PORT, "dlms_micro_mp"))
                         if f.endswith(".py")))
if options.viper:
    module("ghash_viper.py", base_path=_PORT, opt=options.opt)
    module("crc16_viper.py", base_path=_PORT, opt=options.opt)

for _path in ([options.table] if options.table else []) + [
        p.strip() for p in options.modules.split(",") if p.strip()]:
    module(os.path.basename(_path),
           base_path=os.path.dirname(os.path.abspath(_path)),
           opt=options.opt)
