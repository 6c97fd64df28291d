# Link layers: HDLC (IEC 62056-46) and the TCP/UDP wrapper (IEC 62056-47).
