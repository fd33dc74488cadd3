#!/usr/bin/env python3
"""Re-captures the libsrt packets in this folder (see README.md). Needs ffmpeg (built with
libsrt) and srt-live-transmit (Debian: apt-get install ffmpeg srt-tools). Loopback only."""
import os, select, socket, struct, subprocess, sys, time

OUT = os.path.dirname(os.path.abspath(__file__))
SID = "#!::r=live/livestream,m=publish"
LISTENER_ID = 0x11223344   # what our hand-made induction answer calls itself
COOKIE = 0x5EC0C0DE        # the cookie that answer hands out


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ffmpeg_caller(url, seconds=1):
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc=size=320x240:rate=25", "-t", str(seconds), "-f", "mpegts", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def caller_handshakes(prefix, extra):
    """ffmpeg calls us: keep its induction, answer it by hand, keep its conclusion."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    port = s.getsockname()[1]
    p = ffmpeg_caller(f"srt://127.0.0.1:{port}?streamid={SID}&connect_timeout=1000{extra}")
    try:
        ind, addr = s.recvfrom(2000)
        save(f"{prefix}_induction.bin", ind)
        isn, mss, flow = struct.unpack(">III", ind[24:36])
        caller_id = struct.unpack(">I", ind[40:44])[0]
        answer = struct.pack(">IIII", 0x80000000, 0, 1234, caller_id)
        answer += struct.pack(">IIIIIIII", 5, 0x4A17, isn, mss, flow, 1, LISTENER_ID, COOKIE)
        answer += ind[48:64]
        s.sendto(answer, addr)
        while True:
            data, _ = s.recvfrom(2000)
            if data[36:40] == b"\xff\xff\xff\xff":
                save(f"{prefix}_conclusion.bin", data)
                return
    finally:
        p.kill()
        p.wait()


def libsrt_listener(prefix, opts, conclusion):
    """We call srt-live-transmit: replay ffmpeg's handshake, keep the listener's answers."""
    port = free_port()
    p = subprocess.Popen(["srt-live-transmit", "-q", f"srt://127.0.0.1:{port}?mode=listener{opts}",
                          "file://con"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    try:
        ind = open(os.path.join(OUT, "ffmpeg_induction.bin"), "rb").read()
        s.sendto(ind, ("127.0.0.1", port))
        r, _ = s.recvfrom(2000)
        save(f"{prefix}_induction_response.bin", r)
        c = bytearray(open(os.path.join(OUT, conclusion), "rb").read())
        c[40:44] = ind[40:44]     # same caller socket id as the induction
        c[44:48] = r[44:48]       # the listener's cookie
        s.sendto(bytes(c), ("127.0.0.1", port))
        r2, _ = s.recvfrom(2000)
        save(f"{prefix}_conclusion_response.bin", r2)
    finally:
        p.kill()
        p.wait()


def kind(d):
    w0 = struct.unpack(">I", d[:4])[0]
    if not w0 & 0x80000000:
        return "data"
    return {0: "handshake", 1: "keepalive", 2: "ack", 3: "nak", 5: "shutdown", 6: "ackack"}.get(
        (w0 >> 16) & 0x7FFF, "control")


def relayed_session():
    """ffmpeg -> transparent UDP relay -> srt-live-transmit: keep two packets of each kind."""
    oport = free_port()
    o = subprocess.Popen(["srt-live-transmit", "-q", f"srt://127.0.0.1:{oport}?mode=listener",
                          "file://con"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind(("127.0.0.1", 0))
    sid = "#!::h=example.com,r=live/livestream,m=publish,secret=abc"
    c = ffmpeg_caller(f"srt://127.0.0.1:{front.getsockname()[1]}?streamid={sid}"
                      "&latency=200000&connect_timeout=1000", seconds=2)
    client, seen, end = None, {}, time.time() + 6
    try:
        while time.time() < end and c.poll() is None:
            ready, _, _ = select.select([front, back], [], [], 0.2)
            for sk in ready:
                d, a = sk.recvfrom(2000)
                if sk is front:
                    client, way = a, "c2o"
                    back.sendto(d, ("127.0.0.1", oport))
                else:
                    way = "o2c"
                    front.sendto(d, client)
                n = seen.get((way, kind(d)), 0)
                seen[(way, kind(d))] = n + 1
                if n < 2:
                    save(f"session_{way}_{kind(d)}_{n}.bin", d)
    finally:
        c.kill()
        c.wait()
        o.kill()
        o.wait()


if __name__ == "__main__":
    caller_handshakes("ffmpeg", "")
    caller_handshakes("ffmpeg_passphrase", "&passphrase=0123456789abcdef")
    libsrt_listener("libsrt_listener", "", "ffmpeg_conclusion.bin")
    libsrt_listener("libsrt_listener_km", "&passphrase=0123456789abcdef", "ffmpeg_passphrase_conclusion.bin")
    libsrt_listener("libsrt_listener_reject", "&passphrase=0123456789abcdef", "ffmpeg_conclusion.bin")
    relayed_session()
