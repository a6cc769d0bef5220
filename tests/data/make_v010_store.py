"""Build a camaudit 0.1.0 store (tests/data/camaudit-0.1.0.db): run with PYTHONPATH set to the 0.1.0 code."""
import json, os, subprocess, sys, time
from pathlib import Path
from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread
from camaudit.lab.netns import GUARD_ENV

out = Path(sys.argv[1]); out.unlink(missing_ok=True)
tmp = Path("/tmp/v010build")
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {GUARD_ENV: "1"}
LISTENER = "127.78.0.250"
TCP, UDP = "18443", "18800"
log, ready = tmp / "seen.jsonl", tmp / "ready"
ready.unlink(missing_ok=True); log.unlink(missing_ok=True)
py = [sys.executable, "-m", "camaudit"]
lp = subprocess.Popen(py + ["egress", "listen", "--bind", LISTENER, "--tcp-ports", TCP, "--udp-ports", UDP,
                            "--log", str(log), "--no-icmp", "--duration", "120", "--ready-file", str(ready)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
try:
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert lp.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    specs = plan_devices(4, subnet="127.77.0.0/24", mix="hikvision=2,dahua=1,axis=1", seed=7)
    with LabThread(specs) as lab:
        manifest = lab.manifest
        ports = sorted({p for e in manifest for p in e["ports"]["tcp"]})
        r = subprocess.run(py + ["scan", *(e["address"] for e in manifest), "--db", str(out), "--json", "--ports",
                                 ",".join(map(str, ports)), "--no-discovery", "--fail-on", "none", "-q"],
                           capture_output=True, text=True, timeout=300, env=ENV)
        print("scan", r.returncode, r.stderr[-500:])
        safe = ["--resolver", LISTENER, "--tcp-ports", TCP, "--udp-ports", UDP, "--no-upnp", "--no-natpmp",
                "--no-proxy-discovery", "--ra-wait", "0", "--max-hops", "0", "--skip", "icmp", "--timeout", "1",
                "--db", str(out), "--json"]
        for extra in (["--control"], ["--segment", "127.77.0.0/24"]):
            r = subprocess.run(py + ["egress", "check", "--listener", LISTENER, *extra, *safe],
                               capture_output=True, text=True, timeout=120, env=ENV)
            print("check", extra, r.returncode, r.stderr[-300:])
        reg = tmp / "register.csv"
        a = manifest[0]["address"]
        reg.write_text("asset_id,address,declared_maker,location,segment\nCAM-1,%s,Hikvision,Gate,127.77.0.0/24\nCAM-9,127.77.0.99,Axis,Roof,127.77.0.0/24\n" % a)
        r = subprocess.run(py + ["register", "import", str(reg), "--db", str(out)], capture_output=True, text=True, env=ENV)
        print("register", r.returncode, r.stderr[-300:])
        r = subprocess.run(py + ["report", "--db", str(out), "-o", str(tmp / "r.md"), "--fail-on", "none"],
                           capture_output=True, text=True, env=ENV)
        print("report", r.returncode, r.stderr[-300:])
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
finally:
    lp.terminate(); lp.wait(10)
import sqlite3
c = sqlite3.connect(out); c.execute("pragma wal_checkpoint(TRUNCATE)"); c.execute("pragma journal_mode=delete"); c.execute("vacuum"); c.close()
print("size", out.stat().st_size)
