# Security layer: suite 0 (AES-GCM-128) protection, HLS-GMAC, the key store
# and invocation counters (keys.py), key wrap, block-cipher backends.
