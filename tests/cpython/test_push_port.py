# The CPython port's pushes: PushSender -> PushListener over real TCP on
# 127.0.0.1, plain and ciphered; retries then give-up against a closed port;
# HDLC UI frames and a wrapper frame cut in pieces arriving at the listener;
# the readable text; the `listen` command's parser.

import argparse
import asyncio
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from dlms_micro import axdr  # noqa: E402
from dlms_micro.cosem import push  # noqa: E402
from dlms_micro.app import notify  # noqa: E402
from dlms_micro.link import hdlc, wrapper  # noqa: E402
from dlms_micro_cpython.push import PushListener, PushSender, add_listen_parser, parse_destination, run_listen  # noqa: E402
from test_cosem_push import AK, EK, OBJECTS, PUSH_LN, T0, dt, expected_plain, keyed_meter, make_meter  # noqa: E402

VALUES = [(axdr.OCTET_STRING, PUSH_LN), (axdr.OCTET_STRING, dt(10, 0)),
          (axdr.DOUBLE_LONG_UNSIGNED, 12345), (axdr.DOUBLE_LONG_UNSIGNED, 678)]


def set_destination(m, obj, text, service=push.TCP):
    st = push.state_of(m, obj)
    st.dest[0 : len(text)] = text
    st.dest_len = len(text)
    st.service = service


async def wait_for(cond, seconds=5.0):
    for _ in range(int(seconds * 100)):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


def send_through(m, obj, ek=None, ak=None):
    # One push triggered, sent by a PushSender to a PushListener; returns
    # (printed text, notifications received, sender)
    async def main():
        lines = []
        lst = await PushListener("127.0.0.1", 0, ek=ek, ak=ak, out=lines.append).start()
        try:
            set_destination(m, obj, b"127.0.0.1:%d" % lst.port)
            sender = PushSender(m)
            push.trigger(m, obj)
            assert await sender.poll(T0) == 1
            assert await sender.poll(T0) == 0  # in flight: not started twice
            await sender.flush()
            assert await wait_for(lambda: lines)
        finally:
            await lst.stop()
        return lines, lst.received, sender

    return asyncio.run(main())


def test_sender_to_listener_plain():
    m, obj = make_meter(period=0)
    lines, got, sender = send_through(m, obj)
    n = got[0]
    assert n.invoke_id == 1 and not n.confirmed and not n.priority_high and n.protection is None
    assert n.date_time == dt(10, 0)
    assert n.body == (axdr.STRUCTURE, VALUES)
    text = lines[0]
    assert "wrapper wPort 1 -> 102" in text
    assert "push setup 0-0:25.9.0*255" in text
    assert "date-time 2026-07-01 10:00:00 (deviation 0, status 0x00)" in text
    assert "[1]: 2026-07-01 10:00:00" in text and "[2]: 12345" in text and "[3]: 678" in text
    st = push.state_of(m, obj)
    assert sender.sent == 1 and st.pushes == 1 and not st.pending


def test_sender_to_listener_ciphered():
    m, obj = keyed_meter(period=0)
    lines, got, sender = send_through(m, obj, EK, AK)
    n = got[0]
    assert n.body == (axdr.STRUCTURE, VALUES)
    assert n.protection == "general-glo-ciphering SC 0x30 IC 1 system title 444D490000BC614E"
    assert n.protection in lines[0]


def test_ciphered_without_keys_is_shown_but_not_decoded():
    m, obj = keyed_meter(period=0)
    lines, got, sender = send_through(m, obj)
    assert got == [] and "no keys given" in lines[0] and "DB08444D490000BC614E" in lines[0]


def test_wrong_keys_are_reported():
    m, obj = keyed_meter(period=0)
    lines, got, sender = send_through(m, obj, AK, EK)
    assert got == [] and "cannot read" in lines[0]


def test_retries_then_give_up_against_a_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    m, obj = make_meter(period=0, retries=2, delay=10)

    async def main():
        set_destination(m, obj, b"127.0.0.1:%d" % port)
        sender = PushSender(m, timeout=2.0)
        push.trigger(m, obj)
        started = []
        for t in (T0, T0 + 5, T0 + 10, T0 + 20, T0 + 30, T0 + 40):
            sender._now = lambda t=t: t
            started.append(await sender.poll(t))
            await sender.flush()
        return sender, started

    sender, started = asyncio.run(main())
    assert started == [1, 0, 1, 1, 0, 0]
    assert sender.failures == 3 and sender.sent == 0
    assert m.log.lines == ["push: given up after 3 attempts"]


def test_destination_that_is_not_tcp_or_not_host_port_fails():
    m, obj = make_meter(period=0, retries=0)

    async def main():
        sender = PushSender(m)
        set_destination(m, obj, b"", service=push.HDLC)
        push.trigger(m, obj)
        assert await sender.poll(T0) == 0
        set_destination(m, obj, b"no-port")
        push.trigger(m, obj)
        assert await sender.poll(T0) == 0
        return sender

    assert asyncio.run(main()).failures == 2
    assert m.log.lines == ["push: given up after 1 attempts"] * 2
    assert parse_destination(b"[::1]:4061") == ("::1", 4061)


def test_listener_takes_hdlc_ui_frames_and_split_wrapper_frames():
    apdu = expected_plain(7)
    out = bytearray(400)
    end = hdlc.ui_frames(out, 0, apdu, 0, len(apdu), 1, 17, max_info=32)
    wrapped = bytes([0, 1, 0, 1, 0, 0x66, 0, len(apdu)]) + apdu

    async def main():
        lines = []
        lst = await PushListener("127.0.0.1", 0, out=lines.append).start()
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", lst.port)
            w.write(bytes(out[:end]))
            for i in range(0, len(wrapped), 5):
                w.write(wrapped[i : i + 5])
                await w.drain()
                await asyncio.sleep(0.001)
            assert await wait_for(lambda: len(lst.received) == 2)
            w.close()
        finally:
            await lst.stop()
        return lines, lst.received

    lines, got = asyncio.run(main())
    assert [n.invoke_id for n in got] == [7, 7]
    assert got[0].body == got[1].body == (axdr.STRUCTURE, VALUES)
    assert "hdlc 0223 -> client 102" in lines[0]


def test_values_are_named_after_a_pushed_object_list():
    # the push setup's own push_object_list (attribute 2) as first element
    objs = ((40, PUSH_LN, 2, 0),) + OBJECTS[1:]
    m, obj = make_meter(objects=objs, period=0)
    lines, got, sender = send_through(m, obj)
    text = lines[0]
    assert "0-0:25.9.0*255 class 40 attr 2: [{40, 0000190900FF, 2, 0}, {8, 0000010000FF, 2, 0}, " in text
    assert "1-0:1.8.0*255 class 3 attr 2: 12345" in text
    assert "1-0:2.8.0*255 class 3 attr 2: 678" in text
    assert "0-0:1.0.0*255 class 8 attr 2: 2026-07-01 10:00:00" in text


def test_listen_command_parser():
    p = argparse.ArgumentParser(prog="dlms-micro")
    sub = p.add_subparsers(dest="command", required=True)
    add_listen_parser(sub)
    args = p.parse_args(["listen", "--port", "0", "--ek", EK.hex(), "--ak", AK.hex()])
    assert args.command == "listen" and args.port == 0 and args.ek == EK and args.ak == AK
    assert p.parse_args(["listen"]).port == 4061
    args = p.parse_args(["listen", "--ek", EK.hex()])
    assert run_listen(args) == 2
    try:
        p.parse_args(["listen", "--ek", "00"])
        assert False
    except SystemExit:
        pass



def test_listener_refuses_a_tampered_ciphered_notification():
    m, obj = keyed_meter(period=0)
    n = notify.Notifier(m)
    buf = bytearray(300)
    end = n.encode(obj, buf, 8, len(buf), T0)
    buf[end - 2] ^= 1  # a tag byte
    h = wrapper.push_frame(buf, n.start, end, 1)

    async def main():
        lines = []
        lst = await PushListener("127.0.0.1", 0, ek=EK, ak=AK, out=lines.append).start()
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", lst.port)
            w.write(bytes(buf[h:end]))
            await w.drain()
            assert await wait_for(lambda: lines)
            w.close()
        finally:
            await lst.stop()
        return lines, lst.received

    lines, got = asyncio.run(main())
    assert got == [] and "cannot read DB08444D490000BC614E" in lines[0] and "decryption" in lines[0]
