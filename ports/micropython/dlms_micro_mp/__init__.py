# dlms_micro on MicroPython boards (ESP32): UART channels with RS-485
# driver-enable, a steppable main loop, flash storage, a small meter table.
# Installed on the board next to dlms_micro/; not part of the CPython package.
