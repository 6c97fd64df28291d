# dlms_micro: a DLMS/COSEM server (meter side) for MicroPython and CPython.
# The core is sans-IO: it never opens a port, reads a clock or sleeps; ports do.
__version__ = "0.1.0"
