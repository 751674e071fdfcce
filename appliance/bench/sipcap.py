#!/usr/bin/env python3
"""INVITE -> 200 OK latency of the sipp UAC, measured on the wire.

sipp's own response-time trace (-trace_rtt) uses a coarse clock (4 ms steps on
this kind of machine), too coarse for a proxy that answers in well under a
millisecond.  This captures the UAC's UDP traffic on the loopback interface
with a raw IPv4/UDP socket (root needed, standard library only; a BPF filter
keeps only the UAC's port), takes the kernel receive timestamp of each
datagram, and pairs, per Call-ID, the first
INVITE sent by the UAC with the first 200 OK (CSeq ... INVITE) it receives.

  sipcap.py --port UAC_PORT --out RESULT_FILE [--max-seconds 120]

Runs until SIGTERM/SIGINT (or --max-seconds), then writes RESULT_FILE as
"key value" lines:
  invites, answered, p50_ms, p90_ms, p99_ms, max_ms, mean_ms,
  invite_rate (INVITEs per second between the first and the last INVITE),
  drops (packets the kernel dropped before this program read them), error.
"""

import argparse
import ctypes
import re
import signal
import socket
import struct
import sys
import time

SO_ATTACH_FILTER = 26
SO_RXQ_OVFL = 40
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33

CALLID_RE = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]+)", re.I)
CSEQ_RE = re.compile(rb"\r\ncseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)", re.I)


def bpf_udp_port(port):
    """Classic BPF for a raw IPv4 socket (data starts at the IP header):
    accept unfragmented IPv4/UDP with source or destination port == port."""
    prog = [
        (0x30, 0, 0, 9),          # ldb [9]            ip protocol
        (0x15, 0, 8, 17),         # jeq #17 ? : drop   udp
        (0x28, 0, 0, 6),          # ldh [6]            flags/fragment
        (0x45, 6, 0, 0x1FFF),     # jset #0x1fff drop  fragments
        (0xB1, 0, 0, 0),          # ldxb 4*([0]&0xf)   ip header length
        (0x48, 0, 0, 0),          # ldh [x+0]          source port
        (0x15, 2, 0, port),       # jeq port -> accept
        (0x48, 0, 0, 2),          # ldh [x+2]          destination port
        (0x15, 0, 1, port),       # jeq port ? accept : drop
        (0x06, 0, 0, 0xFFFF),     # ret accept
        (0x06, 0, 0, 0),          # ret drop
    ]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    return buf, fprog


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="UDP port of the sipp UAC")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--ready-file", help="touched once the capture socket is open")
    args = ap.parse_args()

    stop = {"flag": False}

    def on_signal(_sig, _frm):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    result = {"error": "none"}
    drops = 0
    invite_ts = {}     # call-id -> first INVITE timestamp (s)
    latencies = {}     # call-id -> seconds
    first_inv = last_inv = None
    sock = None
    try:
        # a raw IPPROTO_UDP socket gets a copy of every UDP datagram delivered
        # to this host, loopback included, exactly once
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024 * 1024)
        keep, fprog = bpf_udp_port(args.port)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        sock.settimeout(0.2)
        # discard whatever slipped through before the filter was attached
        sock.setblocking(False)
        try:
            while True:
                sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            pass
        sock.settimeout(0.2)
        if args.ready_file:
            open(args.ready_file, "w").close()

        deadline = time.monotonic() + args.max_seconds
        anc_size = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(4)
        while not stop["flag"] and time.monotonic() < deadline:
            try:
                data, anc, _flags, _addr = sock.recvmsg(65535, anc_size)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            ts = None
            for level, ctype, cdata in anc:
                if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    ts = sec + nsec / 1e9
                elif level == socket.SOL_SOCKET and ctype == SO_RXQ_OVFL and len(cdata) >= 4:
                    drops = struct.unpack("I", cdata[:4])[0]
            if ts is None:
                ts = time.time()
            if len(data) < 28:
                continue
            ihl = (data[0] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
            payload = data[ihl + 8:]
            if sport == args.port and payload.startswith(b"INVITE "):
                m = CALLID_RE.search(payload)
                if m:
                    cid = m.group(1).strip()
                    if cid not in invite_ts:
                        invite_ts[cid] = ts
                        if first_inv is None:
                            first_inv = ts
                        last_inv = ts
            elif dport == args.port and payload.startswith(b"SIP/2.0 200"):
                c = CSEQ_RE.search(payload)
                if not c or c.group(1).upper() != b"INVITE":
                    continue
                m = CALLID_RE.search(payload)
                if not m:
                    continue
                cid = m.group(1).strip()
                t0 = invite_ts.get(cid)
                if t0 is not None and cid not in latencies:
                    latencies[cid] = ts - t0
    except PermissionError as exc:
        result["error"] = "capture-needs-root:%s" % exc
    except OSError as exc:
        result["error"] = "capture-failed:%s" % exc
    finally:
        if sock is not None:
            sock.close()

    vals = sorted(v * 1000.0 for v in latencies.values())
    result["invites"] = len(invite_ts)
    result["answered"] = len(vals)
    result["drops"] = drops
    if vals:
        result["p50_ms"] = "%.3f" % percentile(vals, 50)
        result["p90_ms"] = "%.3f" % percentile(vals, 90)
        result["p99_ms"] = "%.3f" % percentile(vals, 99)
        result["max_ms"] = "%.3f" % vals[-1]
        result["mean_ms"] = "%.3f" % (sum(vals) / len(vals))
    if first_inv is not None and last_inv is not None and last_inv > first_inv:
        result["invite_rate"] = "%.1f" % ((len(invite_ts) - 1) / (last_inv - first_inv))
    with open(args.out, "w") as fh:
        for k, v in result.items():
            fh.write("%s %s\n" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
