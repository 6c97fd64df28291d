# IEC HDLC setup (class_id 23, version 1), Blue Book 4.7.7: the HDLC
# parameters of one communication port.
#
#   attribute 2 comm_speed                      enum 0..9 (300..115200 baud)
#   attribute 3 window_size_transmit            unsigned 1..7
#   attribute 4 window_size_receive             unsigned 1..7
#   attribute 5 max_info_field_length_transmit  long-unsigned 32..2030
#   attribute 6 max_info_field_length_receive   long-unsigned 32..2030
#   attribute 7 inter_octet_time_out            long-unsigned 20..6000 ms
#   attribute 8 inactivity_time_out             long-unsigned s (0: none)
#   attribute 9 device_address                  long-unsigned 0x10..0x3FFD
#   no methods
#
# state: SLOTS = 8 slots, attributes 2..9 in order ([slot] comm_speed ...
#   [slot+7] device_address), ints. They are what is configured: the port
#   reads them when it creates the next HDLC link (link_parameters()), so a
#   write takes effect on the next connection, never on the running one.
# param: None, or (max_comm_speed,) the highest baud enum the port supports.
# SET: a value of another type gets TYPE_UNMATCHED, a value outside the
# range above (or above max_comm_speed) OTHER_REASON.

from dlms_micro import axdr
from dlms_micro.cosem import base, common

SLOTS = 8

S_COMM_SPEED = 0
S_WINDOW_TX = 1
S_WINDOW_RX = 2
S_MAX_INFO_TX = 3
S_MAX_INFO_RX = 4
S_INTER_OCTET = 5
S_INACTIVITY = 6
S_DEVICE_ADDRESS = 7

# comm_speed / baud enum of the Blue Book (IEC HDLC and IEC local port setup)
BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)

_U = axdr.UNSIGNED
_LU = axdr.LONG_UNSIGNED
_TAGS = (axdr.ENUM, _U, _U, _LU, _LU, _LU, _LU, _LU)
_LO = (0, 1, 1, 32, 32, 20, 0, 0x10)
_HI = (9, 7, 7, 2030, 2030, 6000, 0xFFFF, 0x3FFD)


def initial_state(comm_speed=5, window_tx=1, window_rx=1, max_info_tx=128, max_info_rx=128, inter_octet=25,
                  inactivity=120, device_address=0x10):
    # The SLOTS values, in slot order (defaults: the Blue Book's).
    return [comm_speed, window_tx, window_rx, max_info_tx, max_info_rx, inter_octet, inactivity, device_address]


def link_parameters(meter, entry):
    # For the port: (baud, window_tx, window_rx, max_info_tx, max_info_rx,
    # inter_octet_ms, inactivity_s, device_address) as configured now.
    st = meter.state
    s = entry[base.E_SLOT]
    return (BAUD_RATES[st[s]], st[s + 1], st[s + 2], st[s + 3], st[s + 4], st[s + 5], st[s + 6], st[s + 7])


class IecHdlcSetup(base.InterfaceClass):
    class_id = 23
    version = 1
    attribute_count = 9
    method_count = 0
    slots = SLOTS

    def get(self, ctx, obj, attr):
        if attr < 2 or attr > 9:
            return base.READ_WRITE_DENIED
        i = attr - 2
        ctx.pos = axdr.enc_int(ctx.buf, ctx.pos, _TAGS[i], ctx.meter.state[obj[base.E_SLOT] + i])
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        if attr < 2 or attr > 9:
            return base.READ_WRITE_DENIED
        i = attr - 2
        hi = _HI[i]
        p = obj[base.E_PARAM]
        if i == 0 and p is not None:
            hi = p[0]
        return common.read_value(ctx, _TAGS[i], 0, _LO[i], hi, ctx.meter.state, obj[base.E_SLOT] + i)


IEC_HDLC_SETUP = IecHdlcSetup()
