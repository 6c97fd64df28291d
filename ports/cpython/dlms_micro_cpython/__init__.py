# CPython port of dlms_micro: asyncio TCP, pyserial, file storage, CLI.
# (The transports and the demo meter arrive with the application layer.)
