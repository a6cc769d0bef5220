"""Run ipycam 1.3.0 (a real ONVIF camera emulator nobody on the team wrote) for a bounded time.

ipycam binds 0.0.0.0:3702 and multicasts a Hello on start (lab.md 8.1, 13): only ever run this
inside a lab namespace, through ``ip netns exec``.

    python ipycam_run.py LOCAL_IP SECONDS
"""

import sys
import time

from ipycam import CameraConfig, IPCamera

camera = IPCamera(CameraConfig(name="LabCam", local_ip=sys.argv[1]))
camera.start()
print("ready", flush=True)
try:
    time.sleep(float(sys.argv[2]))
finally:
    camera.stop()
