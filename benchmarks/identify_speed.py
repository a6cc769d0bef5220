"""How fast identification runs over a store full of evidence (issue 5 item 8: 10,000 devices < 10 s).

Writes 10,000 devices' observations into a fresh SQLite store (camaudit.store), then times reading
them back grouped by address and identifying every device with camaudit.fingerprint.identify.
Devices are a mix of Hikvision (SADP, ONVIF, HTTP), EZVIZ, Dahua (DHIP, RTSP), Lorex (ONVIF),
Axis, generic servers and bare hosts; serials, MACs and addresses are unique per device, as in a
real fleet, so the structured replies are parsed every time while repeated banners are cached.

    python benchmarks/identify_speed.py [--devices 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from camaudit.fingerprint import identify
from camaudit.model import Observation
from camaudit.store import open_store


def device_observations(index: int) -> list[Observation]:
    address = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
    tail = f"{index:06x}"
    mac_tail = f"{tail[0:2]}:{tail[2:4]}:{tail[4:6]}"
    profile = index % 8

    def o(kind: str, value: str, port: int | None = None) -> Observation:
        return Observation(address, kind, value, port, source="benchmark")

    if profile in (0, 1):
        serial = f"DS-2CD2385G1-I20200414AAWR{index:09d}"
        sadp = (f"<?xml version=\"1.0\" encoding=\"utf-8\"?><ProbeMatch><Types>inquiry</Types><DeviceType>141945</DeviceType>"
                f"<DeviceDescription>DS-2CD2385G1-I</DeviceDescription><DeviceSN>{serial}</DeviceSN><CommandPort>8000</CommandPort>"
                f"<HttpPort>80</HttpPort><MAC>58-50-ed-{mac_tail.replace(':', '-')}</MAC><SoftwareVersion>V5.6.2build 190701</SoftwareVersion>"
                f"<DSPVersion>V7.3 build 190626</DSPVersion><Activated>true</Activated></ProbeMatch>")
        scopes = ("onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/DS-2CD2385G1-I "
                  f"onvif://www.onvif.org/MAC/58:50:ed:{mac_tail} onvif://www.onvif.org/name/HIKVISION%20DS-2CD2385G1-I "
                  "onvif://www.onvif.org/location/city/hangzhou")
        return [o("mac", f"58:50:ed:{mac_tail}"), o("open_port", "tcp/80", 80), o("open_port", "tcp/554", 554),
                o("open_port", "tcp/8000", 8000), o("sadp", sadp), o("onvif_probe_match", scopes, 3702),
                o("http_server", "App-webs/", 80), o("rtsp_www_authenticate", 'Digest realm="IP Camera(C2183)", nonce="x"', 554)]
    if profile == 2:
        sadp = (f"<ProbeMatch><Types>inquiry</Types><DeviceDescription>CS-C6TC-32WFR</DeviceDescription>"
                f"<DeviceSN>CS-C6TC-32WFR0120170327CCCH{index:09d}</DeviceSN><CommandPort>8000</CommandPort>"
                f"<SoftwareVersion>V5.2.3build 180804</SoftwareVersion></ProbeMatch>")
        return [o("mac", f"54:c4:15:{mac_tail}"), o("sadp", sadp), o("open_port", "tcp/554", 554)]
    if profile in (3, 4):
        dhip = json.dumps({"mac": f"08:ed:ed:{mac_tail}", "method": "client.notifyDevInfo", "params": {"deviceInfo": {
            "DeviceClass": "IPC", "DeviceType": "IPC-HDW1431T1-S4", "SerialNo": f"6C01E93PA{index:06d}", "Vendor": "Private",
            "Manufacturer": "Private", "Version": "2.800.0000000.13.R", "Port": 37777, "HttpPort": 80}}})
        return [o("mac", f"08:ed:ed:{mac_tail}"), o("dhip", dhip), o("open_port", "tcp/37777", 37777),
                o("rtsp_server", "Rtsp Server/3.0", 554), o("http_title", "WEB SERVICE", 80),
                o("favicon_mmh3", "1653394551", 80)]
    if profile == 5:
        info = json.dumps({"Manufacturer": "Lorex", "Model": "LNE8964AB", "FirmwareVersion": "2.800.0000000.13.R",
                           "SerialNumber": f"3E00E38PA{index:06d}"})
        return [o("mac", f"00:1f:54:{mac_tail}"), o("onvif_device_info", info, 80),
                o("rtsp_www_authenticate", f'Digest realm="Login to 3E00E38PA{index:06d}", nonce="x"', 554)]
    if profile == 6:
        return [o("mac", f"ac:cc:8e:{mac_tail}"), o("tls_cert", f"subject=CN=axis-accc8e{tail},O=Axis Communications AB", 443),
                o("http_title", "AXIS", 80)]
    return [o("mac", f"00:11:22:{mac_tail}"), o("http_server", "lighttpd/1.4.16", 80), o("open_port", "tcp/22", 22)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=10.0, help="fail (exit 1) above this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.db")
        scan_id = store.start_scan(targets=["10.0.0.0/16"])
        batch: list[Observation] = []
        for index in range(args.devices):
            batch.extend(device_observations(index))
        t0 = time.perf_counter()
        store.add_observations(scan_id, batch)
        t_write = time.perf_counter() - t0

        identify([])  # load signatures once, outside the timed part (as a scan does at start)
        t1 = time.perf_counter()
        grouped: dict[str, list[Observation]] = defaultdict(list)
        rows = store.db.execute("select address, port, kind, value, source, observed_at from observations where scan_id = ?",
                                [scan_id]).fetchall()
        for address, port, kind, value, source, observed_at in rows:
            grouped[address].append(Observation(address, kind, value, port, source, observed_at))
        t_read = time.perf_counter() - t1
        t2 = time.perf_counter()
        vendors = Counter(identify(obs).vendor for obs in grouped.values())
        t_identify = time.perf_counter() - t2
        store.close()
    total = t_read + t_identify
    print(f"devices: {len(grouped)}  observations: {len(rows)}")
    print(f"store write (setup): {t_write:.2f} s")
    print(f"read from store: {t_read:.2f} s  identify: {t_identify:.2f} s  "
          f"({t_identify / max(len(grouped), 1) * 1e6:.0f} us/device)  read+identify: {total:.2f} s")
    print("vendors:", dict(vendors.most_common()))
    return 0 if total < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
