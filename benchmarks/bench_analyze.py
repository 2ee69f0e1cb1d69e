"""How fast `timewait analyze` reads a capture, and how much memory it holds, against scapy.

    PYTHONPATH=src python benchmarks/bench_analyze.py [--packets 1000000] [--scapy-packets 200000]

It writes a capture of short connections (SYN, SYN|ACK, ACK, a request and its ACK, a reply
and its ACK, then FIN, ACK, FIN, ACK with the server closing first: 11 segments each, with the
timestamps option) to a temporary directory, as pcap and as pcapng (editcap, when present),
then reads it in a child process per reader (so that each peak RSS is its own):

- ``timewait``: :func:`timewait.pcapread.read_tcp` (dpkt's record reader, headers by struct);
- ``dpkt-decode``: dpkt's record reader and dpkt's own Ethernet/IP/TCP objects;
- ``pcapng-lib``: python-pcapng's block scanner on the pcapng copy, headers by struct;
- ``scapy``: scapy's PcapReader, the Ethernet/IP/TCP objects most Python tools use;
- ``analyze``: the whole report, :func:`timewait.analyze.analyze`, on the full file and on a
  half of it: both last longer than one TIME_WAIT, so memory that stays the same from the half
  to the whole is flat in the file size.

scapy is slow enough that it reads the first ``--scapy-packets`` packets only; its rate is
packets per second over those.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SERVER = (bytes([10, 0, 0, 2]), 443)


def write_capture(path: str, packets: int) -> int:
    """A pcap of ``packets`` TCP segments (rounded down to whole connections)."""
    eth = b"\x00" * 12 + b"\x08\x00"
    tcp_hdr = struct.Struct("!HHIIBBHHH")
    ip_hdr = struct.Struct("!BBHHHBBH4s4s")
    rec = struct.Struct("<IIII")
    per = 11
    n = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        conn = 0
        t = 1_700_000_000.0
        while n + per <= packets:
            client = bytes([10, 1, (conn >> 8) & 0xFF, conn & 0xFF])
            cport = 32768 + conn % 28000
            cisn, sisn = (conn * 7919) & 0xFFFFFFFF, (conn * 104729 + 17) & 0xFFFFFFFF
            c, s = (client, cport), SERVER
            plan = [  # (from, flags, seq, ack, payload)
                (c, 0x02, cisn, 0, 0),
                (s, 0x12, sisn, cisn + 1, 0),
                (c, 0x10, cisn + 1, sisn + 1, 0),
                (c, 0x18, cisn + 1, sisn + 1, 100),
                (s, 0x10, sisn + 1, cisn + 101, 0),
                (s, 0x18, sisn + 1, cisn + 101, 500),
                (c, 0x10, cisn + 101, sisn + 501, 0),
                (s, 0x11, sisn + 501, cisn + 101, 0),
                (c, 0x10, cisn + 101, sisn + 502, 0),
                (c, 0x11, cisn + 101, sisn + 502, 0),
                (s, 0x10, sisn + 502, cisn + 102, 0),
            ]
            for k, (src, flags, seq, ack, length) in enumerate(plan):
                dst = s if src is c else c
                opts = b"\x01\x01\x08\x0a" + struct.pack("!II", (conn * 10 + k) & 0xFFFFFFFF, 0)
                tcp = (
                    tcp_hdr.pack(
                        src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (32 // 4) << 4, flags, 65535, 0, 0
                    )
                    + opts
                )
                ip = ip_hdr.pack(0x45, 0, 20 + 32 + length, 0, 0x4000, 64, 6, 0, src[0], dst[0])
                frame = eth + ip + tcp + b"x" * length
                ts = t + k * 1e-4
                f.write(rec.pack(int(ts), int((ts % 1) * 1e6), len(frame), len(frame)))
                f.write(frame)
            n += per
            conn += 1
            t += 0.002
    return n


def read_timewait(path, limit):
    from timewait.pcapread import read_tcp

    n = 0
    for _ in read_tcp(path):
        n += 1
    return n


def read_dpkt_decode(path, limit):
    import dpkt

    n = 0
    with open(path, "rb") as f:
        for _t, buf in dpkt.pcap.Reader(f):
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            dict(dpkt.tcp.parse_opts(tcp.opts)) if tcp.opts else None
            (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, len(tcp.data))
            n += 1
    return n


def read_pcapng_lib(path, limit):
    from pcapng import FileScanner
    from pcapng.blocks import EnhancedPacket

    from timewait.pcapread import parse_frame

    n = 0
    with open(path + "ng", "rb") as f:
        for block in FileScanner(f):
            if isinstance(block, EnhancedPacket):
                parse_frame(block.timestamp, block.packet_data, 1)
                n += 1
    return n


def read_scapy(path, limit):
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader

    n = 0
    for pkt in PcapReader(path):
        ip, tcp = pkt[IP], pkt[TCP]
        _ = (ip.src, ip.dst, tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.options)  # decode each
        n += 1
        if n >= limit:
            break
    return n


def run_analyze(path, limit):
    from timewait.analyze import analyze

    report = analyze(path)
    assert report.close_kinds["four-segment"] == report.incarnation_count
    return report.packets


READERS = {
    "timewait": read_timewait,
    "dpkt-decode": read_dpkt_decode,
    "pcapng-lib": read_pcapng_lib,
    "scapy": read_scapy,
    "analyze": run_analyze,
}


def child(name: str, path: str, limit: int) -> None:
    import resource

    start = time.perf_counter()
    n = READERS[name](path, limit)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "reader": name,
                "packets": n,
                "seconds": elapsed,
                "packets_per_s": n / elapsed,
                "peak_rss_mib": peak_kib / 1024,
            }
        )
    )


def measure(name, path, limit):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [os.path.join(os.path.dirname(__file__), "..", "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, path, str(limit)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--scapy-packets", type=int, default=200_000)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        big, half = os.path.join(tmp, "big.pcap"), os.path.join(tmp, "half.pcap")
        n = write_capture(big, args.packets)
        write_capture(half, args.packets // 2)
        print(f"capture: {n:,} packets, {os.path.getsize(big) / 1e6:.0f} MB")
        rows = [measure("timewait", big, n), measure("dpkt-decode", big, n)]
        if shutil.which("editcap"):
            subprocess.run(["editcap", "-F", "pcapng", big, big + "ng"], check=True)
            rows.append(measure("pcapng-lib", big, n))
        rows.append(measure("scapy", big, args.scapy_packets))
        rows.append(measure("analyze", big, n))
        q = measure("analyze", half, n)
        q["reader"] = "analyze (half of the file)"
        rows.append(q)
        scapy_rate = next(r["packets_per_s"] for r in rows if r["reader"] == "scapy")
        print(f"{'reader':34s} {'packets':>10s} {'packets/s':>11s} {'vs scapy':>9s} {'peak RSS':>9s}")
        for r in rows:
            print(
                f"{r['reader']:34s} {r['packets']:>10,} {r['packets_per_s']:>11,.0f} "
                f"{r['packets_per_s'] / scapy_rate:>8.1f}x {r['peak_rss_mib']:>7.0f} MB"
            )


if __name__ == "__main__":
    main()
