"""peernetd tells systemd when it is ready and when it stops (Type=notify in peernetd.service).

Stands in for systemd: listens on a datagram socket named by NOTIFY_SOCKET, starts the real
daemon, and expects READY=1 once it listens and STOPPING=1 after SIGTERM, then exit status 0.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request


def receive(sock, timeout):
    sock.settimeout(timeout)
    return sock.recv(4096).decode()


def main():
    binary = os.environ["PEERNETD"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        port_file = os.path.join(tmp, "port")
        env = dict(os.environ, NOTIFY_SOCKET=path)
        daemon = subprocess.Popen([binary, "--listen", "127.0.0.1", "--port", "0",
                                   "--port-file", port_file, "--log-level", "warn"], env=env)
        failures = []
        try:
            ready = receive(sock, 10)
            if "READY=1" not in ready:
                failures.append(f"first notification is not READY=1: {ready!r}")
            port = open(port_file).read().strip()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                if r.read() != b"ok\n":
                    failures.append("not serving /healthz once READY=1 was sent")
            daemon.send_signal(signal.SIGTERM)
            stopping = receive(sock, 10)
            if "STOPPING=1" not in stopping:
                failures.append(f"no STOPPING=1 after SIGTERM: {stopping!r}")
            status = daemon.wait(timeout=10)
            if status != 0:
                failures.append(f"exit status {status} after SIGTERM")
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    for failure in failures:
        print("FAIL:", failure)
    print(f"sd_notify: {4 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
