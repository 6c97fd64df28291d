# A real third-party Modbus RTU server (pymodbus, pinned in the dev extras)
# on a serial device, for tests/cpython/test_source_modbus_pymodbus.py:
#
#   python pymodbus_peer.py DEVICE IMAGE.json
#
# IMAGE: {"SLAVE": {"ir": [word, ...], "hr": [word, ...]}}: the input and
# holding registers from protocol address 0. A slave not in IMAGE gets an
# exception reply from pymodbus (code 4, slave device failure), an address
# past its registers another (code 2). Runs until killed.

import json
import sys
import warnings

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartSerialServer


def main():
    port, image_path = sys.argv[1], sys.argv[2]
    with open(image_path) as f:
        image = json.load(f)
    warnings.simplefilter("ignore")  # the datastore API is deprecated for v4
    devices = {}
    for slave, regs in image.items():
        # pymodbus's data blocks start at 1 for protocol address 0
        devices[int(slave)] = ModbusDeviceContext(
            ir=ModbusSequentialDataBlock(1, regs.get("ir", [0])),
            hr=ModbusSequentialDataBlock(1, regs.get("hr", [0])),
        )
    context = ModbusServerContext(devices=devices, single=False)
    print("pymodbus peer: serving", sorted(devices), "on", port, flush=True)
    StartSerialServer(context=context, port=port, baudrate=9600, parity="N")


if __name__ == "__main__":
    main()
