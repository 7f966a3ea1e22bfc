"""PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) for
integration tests of listeners that expect one in front of each connection.

    sock.sendall(v1_header("192.0.2.1", 56324, "198.51.100.2", 443) + request)
    sock.sendall(v2_header("2001:db8::1", 1234, "2001:db8::2", 80,
                           tlvs=tlv(PP2_TYPE_ALPN, b"h2")) + request)
    sock.sendall(v2_header(None, 0, None, 0, local=True))  # a health check

The address family (IPv4 or IPv6) follows the form of the addresses; both
must have the same. Only TCP is written, since ringlb's listeners are TCP.
"""

import ipaddress
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20


def _pair(src_ip, dst_ip):
    src, dst = ipaddress.ip_address(src_ip), ipaddress.ip_address(dst_ip)
    if src.version != dst.version:
        raise ValueError("source and destination must both be IPv4 or both IPv6")
    return src, dst


def _port(port):
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return port


def v1_header(src_ip, src_port, dst_ip, dst_port):
    """The v1 text line "PROXY TCP4|TCP6 src dst sport dport\\r\\n" as bytes."""
    src, dst = _pair(src_ip, dst_ip)
    proto = "TCP4" if src.version == 4 else "TCP6"
    return f"PROXY {proto} {src} {dst} {_port(src_port)} {_port(dst_port)}\r\n".encode()


def tlv(ttype, value):
    """One v2 TLV: type byte, 2-byte big-endian length, value."""
    return struct.pack(">BH", ttype, len(value)) + bytes(value)


def v2_header(src_ip, src_port, dst_ip, dst_port, tlvs=b"", local=False):
    """A binary v2 header: signature, version 2, command PROXY (or LOCAL),
    TCP over IPv4 or IPv6, the addresses and ports, then `tlvs` (bytes, e.g.
    from tlv()). With local=True the command is LOCAL and the family UNSPEC,
    with no addresses (as HAProxy sends for its health checks); the address
    arguments are then ignored and may be None."""
    if local:
        ver_cmd, fam, addrs = 0x20, 0x00, b""
    else:
        src, dst = _pair(src_ip, dst_ip)
        ver_cmd, fam = 0x21, 0x11 if src.version == 4 else 0x21
        addrs = src.packed + dst.packed + struct.pack(">HH", _port(src_port), _port(dst_port))
    block = addrs + bytes(tlvs)
    if len(block) > 0xFFFF:
        raise ValueError("v2 address block and TLVs exceed 65535 bytes")
    return V2_SIGNATURE + struct.pack(">BBH", ver_cmd, fam, len(block)) + block
