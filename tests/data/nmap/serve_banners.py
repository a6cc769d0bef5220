"""Loopback listeners that answer with banners from the reference, for producing nmap XML.

Not a test: run by hand (as root, ports 80/554) to regenerate lab-banners.xml; see README.md.
Every response is the literal shape of the nmap match line that reference/fingerprinting.md and
the corpus cite (line numbers below). Bound to 127.64.0.0/16 only; exits after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio

NONCE = "0123456789abcdef0123456789abcdef"
BOM_XHTML = ('\ufeff<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
             '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n<html> \r\n<head>\r\n<title>WEB SERVICE</title>\r\n'
             '</head>\r\n</html>\r\n')

BANNERS: dict[tuple[str, int], bytes] = {
    # Hikvision IPC: nmap-service-probes line 9679 (corpus nmap-hik-appwebs)
    ("127.64.0.10", 80): (b"HTTP/1.0 200 OK\r\nDate: Wed, 05 May 2021 21:51:17 GMT\r\nServer: App-webs/\r\n"
                          b"Content-Length: 0\r\nContent-Type: text/html\r\n\r\n"),
    # Hikvision DVR RTSP: line 12141 (corpus nmap-hik-rtsp-realm)
    ("127.64.0.10", 554): (f'RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm="Hikvision", nonce="{NONCE}", '
                           f'stale="FALSE"\r\nWWW-Authenticate: Basic realm="/"\r\n\r\n').encode(),
    # Dahua: HTTP shape line 10323 (corpus nmap-dahua-http-shape), RTSP line 11363 (nmap-dahua-rtsp-405)
    ("127.64.0.11", 80): (b"HTTP/1.1 200 OK\r\nCONNECTION: close\r\nCONTENT-LENGTH: " + str(len(BOM_XHTML.encode())).encode()
                          + b"\r\nCONTENT-TYPE: text/html\r\n\r\n" + BOM_XHTML.encode()),
    ("127.64.0.11", 554): b"RTSP/1.0 405 Method Not Allowed\r\nServer: Dahua Rtsp Server\r\nContent-Length: 0\r\nCSeq: 0\r\n\r\n",
    # Lorex RTSP realm: line 14561 (corpus nmap-lorex-rtsp-realm), serial from recog-lorex-realm-1
    ("127.64.0.12", 554): (f'RTSP/1.0 401 Unauthorized\r\nCSeq: 42\r\nWWW-Authenticate: Digest realm="Login to ND011811000000", '
                           f'nonce="{NONCE}"\r\n\r\n').encode(),
    # Generic GoAhead (corpus recog-goahead-ver-3): must stay unknown
    ("127.64.0.13", 80): b"HTTP/1.0 200 OK\r\nServer: GoAhead-Webs/2.5.0\r\nContent-Length: 0\r\n\r\n",
}


async def _serve(response: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        # nmap -sV waits for a banner first; keep the connection open until it sends a probe
        # (closing early makes nmap call the port tcpwrapped, reference/lab.md section 5).
        await asyncio.wait_for(reader.read(4096), timeout=10)
        writer.write(response)
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(seconds: float) -> None:
    servers = []
    for (host, port), response in BANNERS.items():
        servers.append(await asyncio.start_server(lambda r, w, resp=response: _serve(resp, r, w), host, port))
    await asyncio.sleep(seconds)
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    asyncio.run(main(parser.parse_args().seconds))
