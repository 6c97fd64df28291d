# IEC local port setup (class_id 19, version 1), Blue Book 4.7.1: the
# optical / local port working per IEC 62056-21.
#
#   attribute 2 default_mode    enum: 0 IEC 62056-21 (modes A..E),
#                               1 IEC 62056-46 (HDLC), 2 not specified
#   attribute 3 default_baud    enum 0..9 (300..115200 baud, as in IEC HDLC
#   attribute 4 prop_baud       enum 0..9  setup's comm_speed)
#   attribute 5 response_time   enum: 0 20 ms, 1 200 ms
#   attribute 6 device_addr     octet-string, 0..32 bytes
#   attribute 7 pass_p1         octet-string, 0..32 bytes
#   attribute 8 pass_p2         octet-string, 0..32 bytes
#   attribute 9 pass_w5         octet-string, 0..32 bytes
#   no methods
#
# state: SLOTS = 8 slots, attributes 2..9 in order ([slot] default_mode ..
#   [slot+7] pass_w5): ints, then bytes. The port reads them when it starts
#   the next IEC 62056-21 session.
# param: None, or (max_baud,) the highest baud enum the port supports.
# The passwords are secrets: GET of pass_p1/p2/w5 is always
# READ_WRITE_DENIED, whatever the access rights say; SET replaces them.
# SET: another type -> TYPE_UNMATCHED, out of range / too long -> OTHER_REASON.

from dlms_micro import axdr
from dlms_micro.cosem import base, common

SLOTS = 8

S_DEFAULT_MODE = 0
S_DEFAULT_BAUD = 1
S_PROP_BAUD = 2
S_RESPONSE_TIME = 3
S_DEVICE_ADDR = 4
S_PASS_P1 = 5
S_PASS_P2 = 6
S_PASS_W5 = 7

_E = axdr.ENUM
_O = axdr.OCTET_STRING
_TAGS = (_E, _E, _E, _E, _O, _O, _O, _O)
_HI = (2, 9, 9, 1, 32, 32, 32, 32)


def initial_state(default_mode=0, default_baud=0, prop_baud=5, response_time=0, device_addr=b"",
                  pass_p1=b"", pass_p2=b"", pass_w5=b""):
    # The SLOTS values, in slot order.
    return [default_mode, default_baud, prop_baud, response_time, device_addr, pass_p1, pass_p2, pass_w5]


class IecLocalPortSetup(base.InterfaceClass):
    class_id = 19
    version = 1
    attribute_count = 9
    method_count = 0
    slots = SLOTS

    def get(self, ctx, obj, attr):
        if attr < 2 or attr > 6:  # 7..9: passwords, never read out
            return base.READ_WRITE_DENIED
        i = attr - 2
        ctx.pos = common.encode_value(ctx.buf, ctx.pos, _TAGS[i], 0, ctx.meter.state[obj[base.E_SLOT] + i])
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        if attr < 2 or attr > 9:
            return base.READ_WRITE_DENIED
        i = attr - 2
        hi = _HI[i]
        p = obj[base.E_PARAM]
        if (i == 1 or i == 2) and p is not None:
            hi = p[0]
        return common.read_value(ctx, _TAGS[i], 0, 0, hi, ctx.meter.state, obj[base.E_SLOT] + i)


IEC_LOCAL_PORT_SETUP = IecLocalPortSetup()
