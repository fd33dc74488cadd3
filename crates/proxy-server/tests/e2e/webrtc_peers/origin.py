"""A WHIP/WHEP origin for the tests, built on aiortc: NOT SRS, but it answers with SRS's
paths and replies.

- `POST /rtc/v1/whip/?app=..&stream=..` (publish) and `POST /rtc/v1/whep/` or
  `/rtc/v1/whip-play/` (play): `201 Created`, `application/sdp` answer, `ETag`, and SRS's
  relative `Location: /rtc/v1/whip/?action=delete&token=..&app=..&stream=..&session=..`.
  Players get the published track relayed (aiortc decodes and encodes it again).
- `DELETE` on the Location closes the session; `PATCH` with `If-Match` (trickle ICE) is
  accepted with 204, or 412 if the ETag does not match.
- `GET /debug/state`: every request seen (method, target, X-Forwarded-For), frames decoded
  per published stream, open sessions.

ICE-lite-like: the client's candidates are removed from the offer (and end-of-candidates
is not signalled), so the origin never sends checks of its own to the client; it learns
the address the checks come from (the proxy) as a peer-reflexive candidate and answers
there. aiortc is a full agent otherwise, which is fine.

Media port: by default every session's ICE is reached through ONE UDP port (like SRS's
`rtc_server.listen`), a small demultiplexer in front of aiortc's per-session sockets that
routes by the STUN USERNAME, then by source address. `--no-mux` answers with aiortc's own
per-session port instead.

Prints `{"event": "ready", "api": PORT, "rtc": PORT or null}` once listening.
"""

import argparse
import asyncio
import json
import re
import secrets
import sys
from urllib.parse import parse_qs, urlsplit

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

import common


class Mux(asyncio.DatagramProtocol):
    """One public UDP port for every session: datagrams from a new source address are
    routed by the server ufrag of their STUN USERNAME to that session's aiortc socket."""

    def __init__(self):
        self.transport = None
        self.sessions = {}  # server ufrag -> aiortc's local (host, port)
        self.upstreams = {}  # source address -> Upstream

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        upstream = self.upstreams.get(addr)
        if upstream is None:
            target = self.sessions.get(common.stun_server_ufrag(data))
            if target is None:
                return
            upstream = Upstream(self, addr)
            self.upstreams[addr] = upstream
            asyncio.get_running_loop().create_task(upstream.open(target))
        upstream.send(data)


class Upstream(asyncio.DatagramProtocol):
    def __init__(self, mux, source):
        self.mux, self.source = mux, source
        self.transport, self.queue = None, []

    async def open(self, target):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0), remote_addr=target)
        for data in self.queue:
            self.transport.sendto(data)
        self.queue = []

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data):
        if self.transport is None:
            self.queue.append(data)
        else:
            self.transport.sendto(data)

    def datagram_received(self, data, addr):
        self.mux.transport.sendto(data, self.source)


class Origin:
    def __init__(self, mux):
        self.mux = mux
        self.relay = MediaRelay()
        self.tracks = {}  # "app/stream" -> published video track
        self.frames = {}  # "app/stream" -> frames decoded from the publisher
        self.sessions = {}  # token -> {pc, etag, key, kind}
        self.requests = []

    async def handle(self, method, target, headers, body):
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append({"method": method, "target": target, "forwarded_for": headers.get("x-forwarded-for"), "if_match": headers.get("if-match"), "body": body.decode("utf-8", "replace") if method == "PATCH" else None})
        path = url.path.rstrip("/")
        if method == "GET" and path == "/debug/state":
            state = {"requests": self.requests, "frames": self.frames, "sessions": {t: {"key": s["key"], "kind": s["kind"], "state": s["pc"].connectionState} for t, s in self.sessions.items()}}
            return 200, {"Content-Type": "application/json"}, json.dumps(state).encode()
        if method == "POST" and path in ("/rtc/v1/whip", "/rtc/v1/whep", "/rtc/v1/whip-play"):
            return await self.offer(path, query, body.decode())
        if method in ("DELETE", "PATCH") and path in ("/rtc/v1/whip", "/rtc/v1/whep", "/rtc/v1/whip-play"):
            session = self.sessions.get(query.get("token"))
            if session is None:
                return 404, {"Content-Type": "application/json"}, b'{"code":404,"error":"no such session"}'
            if method == "PATCH":
                if headers.get("if-match") not in (session["etag"], "*"):
                    return 412, {}, b""
                return 204, {"ETag": session["etag"]}, b""
            del self.sessions[query["token"]]
            await session["pc"].close()
            return 200, {"Content-Type": "application/json"}, b'{"code":0}'
        return 404, {"Content-Type": "application/json"}, b'{"code":404,"error":"not found"}'

    async def offer(self, path, query, offer):
        app, stream = query.get("app"), query.get("stream")
        if not app or not stream:
            return 400, {"Content-Type": "application/json"}, b'{"code":400,"error":"app and stream required"}'
        key = app + "/" + stream
        publish = path == "/rtc/v1/whip"
        if not publish and key not in self.tracks:
            return 404, {"Content-Type": "application/json"}, b'{"code":404,"error":"stream not found"}'
        # ICE-lite-like: no checks of our own towards the client's candidates.
        offer = "".join(l for l in offer.splitlines(True) if not l.startswith(("a=candidate:", "a=end-of-candidates")))
        pc = RTCPeerConnection(common.CONFIG)
        if publish:
            @pc.on("track")
            def on_track(track):
                if track.kind == "video":
                    self.tracks[key] = track
                    self.frames.setdefault(key, 0)
                    asyncio.ensure_future(self.count(key, self.relay.subscribe(track)))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        if not publish:
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video":
                    pc.addTrack(self.relay.subscribe(self.tracks[key]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp
        ufrag = common.sdp_value(answer, "ice-ufrag")
        if self.mux is not None:
            port = self.mux.transport.get_extra_info("sockname")[1]
            local = None
            for c in common.sdp_candidates(answer):
                parts = c.split()
                if parts[2].lower() == "udp" and parts[7] == "host":
                    local = (parts[4], int(parts[5]))
            self.mux.sessions[ufrag] = local
            # The answer names the one media port, as SRS's does.
            answer = re.sub(r"(a=candidate:\S+ \d+ udp \d+ \S+ )\d+", lambda m: m.group(1) + str(port), answer, flags=re.I)
        token = secrets.token_hex(8)
        etag = '"' + secrets.token_hex(6) + '"'
        client_ufrag = common.sdp_value(offer, "ice-ufrag")
        self.sessions[token] = {"pc": pc, "etag": etag, "key": key, "kind": "publish" if publish else "play"}
        location = f"{path}/?action=delete&token={token}&app={app}&stream={stream}&session={ufrag}:{client_ufrag}"
        return 201, {"Content-Type": "application/sdp", "Location": location, "ETag": etag}, answer.encode()

    async def count(self, key, track):
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.frames[key] = self.frames.get(key, 0) + 1


async def serve_http(origin, reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            body = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        status, out_headers, out = await origin.handle(method, target, headers, body)
        reply = f"HTTP/1.1 {status} X\r\nServer: aiortc-test-origin\r\nContent-Length: {len(out)}\r\nConnection: close\r\n"
        reply += "".join(f"{k}: {v}\r\n" for k, v in out_headers.items())
        writer.write(reply.encode() + b"\r\n" + out)
        await writer.drain()
    except Exception as e:  # a test origin: say what went wrong and go on
        print(f"origin: request failed: {e!r}", file=sys.stderr)
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-mux", action="store_true", help="answer with aiortc's per-session ports")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    mux = None
    if not args.no_mux:
        _, mux = await loop.create_datagram_endpoint(Mux, local_addr=("127.0.0.1", 0))
    origin = Origin(mux)
    server = await asyncio.start_server(lambda r, w: serve_http(origin, r, w), "127.0.0.1", 0)
    api = server.sockets[0].getsockname()[1]
    common.emit("ready", api=api, rtc=mux.transport.get_extra_info("sockname")[1] if mux else None)
    # Runs until the test kills it, or its stdin closes.
    await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    common.run(main)
