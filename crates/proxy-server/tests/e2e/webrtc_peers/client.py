"""A WHIP publisher or WHEP player built on aiortc, for the tests.

  client.py publish URL [--seconds N] [--delete]
  client.py play URL [--seconds N] [--delete]

Prints JSON lines: `answer` (status, Location, ETag, candidates, ICE ufrag/pwd of the
answer and of the client's own offer), `state` (connection state changes), for a player `frames` (decoded video frames
so far, every half second), then `deleted` (status of the DELETE on the Location) if asked,
and `done`. A player retries its offer while the origin answers 404 (nothing published
yet), for up to 10 s.
"""

import argparse
import asyncio
import time
import urllib.error
import urllib.request
from urllib.parse import urljoin

from aiortc import RTCPeerConnection, RTCSessionDescription

import common


def http(method, url, body=b"", headers=None):
    request = urllib.request.Request(url, data=body if method != "GET" else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


async def negotiate(mode, url):
    deadline = time.monotonic() + 10
    while True:
        pc = RTCPeerConnection(common.CONFIG)
        if mode == "publish":
            pc.addTrack(common.Pattern())
        else:
            pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        loop = asyncio.get_running_loop()
        status, headers, body = await loop.run_in_executor(None, lambda: http("POST", url, pc.localDescription.sdp.encode(), {"Content-Type": "application/sdp"}))
        if status == 404 and mode == "play" and time.monotonic() < deadline:
            await pc.close()
            await asyncio.sleep(0.3)
            continue
        return pc, status, headers, body


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["publish", "play"])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--delete", action="store_true")
    args = parser.parse_args()

    pc, status, headers, body = await negotiate(args.mode, args.url)
    headers = {k.lower(): v for k, v in headers.items()}
    answer = body.decode("utf-8", "replace")
    common.emit(
        "answer",
        status=status,
        content_type=headers.get("content-type"),
        location=headers.get("location"),
        etag=headers.get("etag"),
        candidates=common.sdp_candidates(answer),
        ufrag=common.sdp_value(answer, "ice-ufrag"),
        pwd=common.sdp_value(answer, "ice-pwd"),
        local_ufrag=common.sdp_value(pc.localDescription.sdp, "ice-ufrag"),
        local_pwd=common.sdp_value(pc.localDescription.sdp, "ice-pwd"),
        body=answer if status != 201 else None,
    )
    if status != 201:
        await pc.close()
        return

    frames = 0

    @pc.on("connectionstatechange")
    def on_state():
        common.emit("state", state=pc.connectionState)

    async def consume(track):
        nonlocal frames
        while True:
            try:
                await track.recv()
            except Exception:
                return
            frames += 1

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            asyncio.ensure_future(consume(track))

    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        if args.mode == "play":
            common.emit("frames", count=frames)
    if args.delete and headers.get("location"):
        resource = urljoin(args.url, headers["location"])
        loop = asyncio.get_running_loop()
        status, _, _ = await loop.run_in_executor(None, lambda: http("DELETE", resource))
        common.emit("deleted", status=status, url=resource)
    await pc.close()
    common.emit("done", frames=frames)


if __name__ == "__main__":
    common.run(main)
