"""`seqtui app` and `seqtui serve`: options, and a served page on localhost only."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from seqtui.cli import cli


def test_app_and_serve_help():
    runner = CliRunner()
    out = runner.invoke(cli, ["app", "--help"])
    assert out.exit_code == 0
    for option in ("--corpus", "--run", "--screen", "--ansi"):
        assert option in out.output
    out = runner.invoke(cli, ["serve", "--help"])
    assert out.exit_code == 0
    assert "127.0.0.1" in out.output and "ssh -L 8000:127.0.0.1:8000" in out.output


def test_app_rejects_an_unknown_screen():
    out = CliRunner().invoke(cli, ["app", "--screen", "nowhere"])
    assert out.exit_code == 2 and "nowhere" in out.output


def listening_addresses(port: int) -> set[str] | None:
    """IPv4 addresses with a socket listening on ``port`` (None where /proc/net/tcp is absent)."""
    try:
        lines = open("/proc/net/tcp", encoding="ascii").read().splitlines()[1:]
    except OSError:
        return None
    found = set()
    for line in lines:
        local, state = line.split()[1], line.split()[3]
        addr, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_binds_localhost_and_serves_the_page():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "seqtui", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    body = r.read().decode("utf-8", "replace")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.2)
        assert "textual.js" in body and "seqtui" in body
        # bound to the loopback interface only (Linux: the kernel's table of listening sockets)
        listening = listening_addresses(port)
        if listening is not None:
            assert listening == {"127.0.0.1"}, listening
    finally:
        proc.terminate()
        proc.wait(timeout=10)
