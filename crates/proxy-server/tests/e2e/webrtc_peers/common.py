"""What the WebRTC test peers share: loopback-only ICE, no STUN servers, a synthetic video
source, and small helpers (SDP and STUN reading, JSON event lines on stdout)."""

import asyncio
import fractions
import json
import struct
import sys

import aioice.ice
import av
from aiortc import RTCConfiguration, VideoStreamTrack

# aioice leaves loopback addresses out of its host candidates; the tests run on loopback
# only, so make 127.0.0.1 the one host address.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

# No STUN server (aiortc's default is a public one, unreachable here).
CONFIG = RTCConfiguration(iceServers=[])


def emit(event, **fields):
    """One JSON line on stdout, read by the Rust test."""
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def sdp_value(sdp, name):
    """The first `a=<name>:` value of an SDP."""
    for line in sdp.splitlines():
        if line.startswith("a=" + name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def sdp_candidates(sdp):
    return [line[2:].strip() for line in sdp.splitlines() if line.startswith("a=candidate:")]


def stun_server_ufrag(data):
    """The server ufrag of a STUN binding request's USERNAME, or None."""
    if len(data) < 20 or data[0] > 3 or data[4:8] != b"\x21\x12\xa4\x42":
        return None
    if struct.unpack("!H", data[0:2])[0] != 0x0001:
        return None
    offset, end = 20, min(len(data), 20 + struct.unpack("!H", data[2:4])[0])
    while offset + 4 <= end:
        kind, length = struct.unpack("!HH", data[offset : offset + 4])
        value = data[offset + 4 : offset + 4 + length]
        if kind == 0x0006:
            return value.split(b":", 1)[0].decode("ascii", "replace")
        offset += 4 + ((length + 3) & ~3)
    return None


class Pattern(VideoStreamTrack):
    """A small moving test picture at 30 fps."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        luma = bytes((x + self.n * 4) % 256 for x in range(256))
        y = frame.planes[0]
        y.update((luma * (y.buffer_size // 256 + 1))[: y.buffer_size])
        for chroma in frame.planes[1:]:
            chroma.update(bytes([128]) * chroma.buffer_size)
        frame.pts = pts
        frame.time_base = time_base if isinstance(time_base, fractions.Fraction) else fractions.Fraction(1, 90000)
        self.n += 1
        return frame


def run(main):
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
