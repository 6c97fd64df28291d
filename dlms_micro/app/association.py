# The state of one application association (one per channel / link
# connection). Allocated once per channel and reset, never rebuilt.

# association_status (Association LN attribute 8)
NON_ASSOCIATED = 0
ASSOCIATION_PENDING = 1
ASSOCIATED = 2

# application-context-name last arc (2.16.756.5.8.1.x)
CONTEXT_LN = 1
CONTEXT_SN = 2
CONTEXT_LN_CIPHERED = 3
CONTEXT_SN_CIPHERED = 4

# Conformance block bits (Green Book, xDLMS conformance; bit 0 is the most
# significant bit of the 24-bit string, so the mask of bit n is 1 << (23 - n))
CONF_RESERVED_ZERO = 1 << 23
CONF_GENERAL_PROTECTION = 1 << 22
CONF_GENERAL_BLOCK_TRANSFER = 1 << 21
CONF_READ = 1 << 20
CONF_WRITE = 1 << 19
CONF_UNCONFIRMED_WRITE = 1 << 18
CONF_DELTA_VALUE_ENCODING = 1 << 17
CONF_RESERVED_SEVEN = 1 << 16
CONF_ATTRIBUTE0_SET = 1 << 15
CONF_PRIORITY_MGMT = 1 << 14
CONF_ATTRIBUTE0_GET = 1 << 13
CONF_BLOCK_TRANSFER_WITH_GET = 1 << 12
CONF_BLOCK_TRANSFER_WITH_SET = 1 << 11
CONF_BLOCK_TRANSFER_WITH_ACTION = 1 << 10
CONF_MULTIPLE_REFERENCES = 1 << 9
CONF_INFORMATION_REPORT = 1 << 8
CONF_DATA_NOTIFICATION = 1 << 7
CONF_ACCESS = 1 << 6
CONF_PARAMETERIZED_ACCESS = 1 << 5
CONF_GET = 1 << 4
CONF_SET = 1 << 3
CONF_SELECTIVE_ACCESS = 1 << 2
CONF_EVENT_NOTIFICATION = 1 << 1
CONF_ACTION = 1 << 0


class AssociationState:
    def __init__(self):
        # HLS challenges: the client's CtoS (from the AARQ) and ours, StoC
        self.ctos = bytearray(64)
        self.stoc = bytearray(64)
        # the channel's suite 0 (dlms_micro.security.suite0.Suite0) or None
        self.security = None
        self.reset()

    def reset(self):
        self.status = NON_ASSOCIATED
        self.role = -1  # index into Meter.roles
        self.client_sap = 0
        self.server_sap = 0  # the logical device addressed
        self.context = CONTEXT_LN
        self.mechanism = 0
        self.conformance = 0  # negotiated (intersection)
        self.client_max_pdu = 0  # the client's max receive PDU size
        self.server_max_pdu = 0  # ours, as sent in the InitiateResponse
        self.dlms_version = 6
        self.quality_of_service = -1  # -1: not present
        # The client system title the AARQ presented (calling-AP-title, 8
        # bytes, bytes or bytearray; set by the security layer), or None
        self.client_system_title = None
        self.ctos_len = 0
        self.stoc_len = 0
        # Link facts for Association LN / IEC HDLC setup (set by the server)
        self.link_kind = 0  # 0: none, 1: HDLC, 2: wrapper
        self.client_address = 0
        self.server_address = 0
        # Block transfer in progress (GET next / SET with datablock / ACTION)
        self.block_kind = 0
        self.block_number = 0
        self.block_obj = None
        self.block_attr = 0
        self.block_cursor = 0
        self.block_invoke = 0
