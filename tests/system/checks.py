"""Run inside the booted container as a oneshot unit: check the installed service, power off.

Standard library only (it runs on the container's python3, not in logwatch's venv).
Writes one JSON object per check to /root/results.jsonl; the host test reads them.
Arguments: the metrics port, the path of the .deb (for the upgrade check).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path("/root/results.jsonl")
AUTH_LOG = Path("/var/log/auth.log")
CONFIG = Path("/etc/logwatch/logwatch.toml")
EXTRA_RULES = Path("/etc/logwatch/rules.d/systest.toml")
METRICS_PORT = int(sys.argv[1])
DEB = sys.argv[2]
DOCUMENTED = ("logwatch_lines_read_total", "logwatch_rule_hits_total",
              "logwatch_alerts_queued_total", "logwatch_alerts_delivered_total",
              "logwatch_outbox_pending", "logwatch_outbox_dead",
              "logwatch_delivery_latency_seconds_bucket", "logwatch_rate_limited_total",
              "logwatch_source_lag_bytes", "logwatch_last_delivery_timestamp_seconds")


def sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER": "",
                               "SYSTEMD_COLORS": "0", "LANG": "C.UTF-8"})
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {done.returncode}: "
                             f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


def prop(name: str) -> str:
    return sh("systemctl", "show", "-P", name, "logwatch.service").strip()


def wait(what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return value


def scrape() -> str:
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text: str = reply.read().decode()
        return text


def delivered() -> float:
    found = re.search(r'^logwatch_alerts_delivered_total\{destination="discord",kind="alert"\} '
                      r"(\S+)$", scrape(), re.M)
    return float(found.group(1)) if found else 0.0


def journal(*args: str) -> str:
    return sh("journalctl", "-u", "logwatch.service", "--no-pager", "-o", "cat", *args)


def append_auth(*lines: str) -> None:
    stamp = time.strftime("%b %e %H:%M:%S")
    with AUTH_LOG.open("a") as out:
        out.writelines(f"{stamp} systest {line}\n" for line in lines)


def record(name: str, check: Callable[[], str]) -> bool:
    started = time.monotonic()
    try:
        detail, ok = check(), True
    except Exception as exc:  # every failure is a result; the next checks still run
        detail, ok = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}", False
    with RESULTS.open("a") as out:
        out.write(json.dumps({"check": name, "ok": ok, "detail": detail,
                              "seconds": round(time.monotonic() - started, 3)}) + "\n")
    return ok


# ---------------------------------------------------------------------------


def active_via_notify() -> str:
    started = time.monotonic()
    sh("systemctl", "enable", "--now", "logwatch.service")
    took = time.monotonic() - started
    assert prop("ActiveState") == "active", prop("ActiveState")
    assert prop("Type") == "notify", prop("Type")
    status = prop("StatusText")
    assert "lines/s" in status, f"no STATUS= from sd_notify: {status!r}"
    wait("metrics", lambda: "logwatch_outbox_pending" in scrape())
    return f"enable --now returned after {took:.2f}s; status: {status}"


def dynamic_user_reads_adm_log() -> str:
    pid = prop("MainPID")
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M).group(1).split()  # type: ignore[union-attr]
    adm = sh("getent", "group", "adm").split(":")[2]
    assert uid != 0 and prop("DynamicUser") == "yes", f"uid {uid}"
    assert adm in groups, f"groups {groups}, adm is {adm}"
    owner = sh("stat", "-c", "%U:%G %a", str(AUTH_LOG)).strip()
    assert owner == "root:adm 640", owner
    before = delivered()
    sent = time.monotonic()
    append_auth(*(f"sshd[{4000 + n}]: Failed password for invalid user admin from 203.0.113.9 "
                  f"port {50000 + n} ssh2" for n in range(5)))
    wait("the alert delivered", lambda: delivered() >= before + 1)
    return (f"uid {uid}, groups {groups} (adm={adm}); {AUTH_LOG} is {owner}; "
            f"alert delivered {time.monotonic() - sent:.2f}s after the lines were written")


def bad_reload_keeps_process() -> str:
    pid = prop("MainPID")
    good = CONFIG.read_text()
    CONFIG.write_text(good + '\n[[rules]]\nid = "broken"\nmatch = "(unclosed"\n')
    try:
        sh("systemctl", "reload", "logwatch.service")
        warnings = wait("the reload errors at priority warning or above", lambda: (
            t if "still running the old one" in (t := journal("-p", "warning")) else None))
    finally:
        CONFIG.write_text(good)
    assert prop("MainPID") == pid, f"MainPID {pid} -> {prop('MainPID')}"
    assert prop("ActiveState") == "active", prop("ActiveState")
    lines = [line for line in warnings.splitlines() if "reload" in line]
    return f"same pid {pid}; journalctl -p warning: {lines}"


def good_reload_applies() -> str:
    pid = prop("MainPID")
    EXTRA_RULES.write_text(
        '[[rules]]\nid = "systest-marker"\nsource = "auth"\n'
        "match = 'systest-marker (?P<n>\\d+)'\n"
        'title = "marker {n}"\nseverity = "warning"\n')
    sh("systemctl", "reload", "logwatch.service")
    wait("the reload", lambda: "reload: /etc/logwatch/logwatch.toml" in journal())
    wait("active after the reload", lambda: prop("ActiveState") == "active")
    before = delivered()
    append_auth("systest-marker 7")
    wait("the new rule's alert delivered", lambda: delivered() >= before + 1)
    assert prop("MainPID") == pid
    return f"same pid {pid}; the new rule alerted"


def upgrade_restarts() -> str:
    pid = prop("MainPID")
    sh("dpkg", "-i", DEB)
    wait("active after the upgrade", lambda: prop("ActiveState") == "active")
    new = prop("MainPID")
    assert new not in (pid, "0"), f"MainPID {pid} -> {new}"
    assert "logwatch_outbox_pending" in wait("metrics again", scrape)
    return f"reinstalled while running: pid {pid} -> {new}, active"


def metrics_series() -> str:
    text = scrape()
    missing = [name for name in DOCUMENTED if f"\n{name}" not in text]
    assert not missing, f"missing: {missing}"
    assert "SECRET" not in text and "203.0.113.9" not in text
    return f"{len(text.splitlines())} lines, every documented series present"


def security_score() -> str:
    out = sh("systemd-analyze", "security", "--no-pager", "logwatch.service", check=False)
    found = re.search(r"Overall exposure level for logwatch\.service: (\d+\.\d+)", out)
    assert found, out[-500:]
    score = float(found.group(1))
    assert score <= 2.0, out[-2000:]
    return found.group(0)


def clean_stop() -> str:
    sh("systemctl", "stop", "logwatch.service")
    result = (prop("Result"), prop("ExecMainCode"), prop("ExecMainStatus"))
    assert result == ("success", "1", "0"), f"Result, ExecMainCode, ExecMainStatus = {result}"
    assert "stopping: draining the outbox" in journal()
    return "Result=success, exited 0"


def no_traceback() -> str:
    text = journal()
    assert "Traceback" not in text, text[-3000:]
    return f"{len(text.splitlines())} journal lines, no traceback"


def main() -> None:
    RESULTS.unlink(missing_ok=True)
    try:
        if record("active via notify", active_via_notify):
            record("dynamic user reads an adm log, the alert reaches Discord",
                   dynamic_user_reads_adm_log)
            record("bad reload keeps the process, logs at warning", bad_reload_keeps_process)
            record("good reload applies", good_reload_applies)
            record("/metrics has the documented series", metrics_series)
            record("upgrade while running restarts it", upgrade_restarts)
            record("systemd-analyze security <= 2.0", security_score)
            record("clean stop", clean_stop)
        record("no traceback in the journal", no_traceback)
        with RESULTS.open("a") as out:
            out.write(json.dumps({"journal": journal()[-20000:]}) + "\n")
    finally:
        subprocess.run(["systemctl", "--no-block", "poweroff"], check=False)


if __name__ == "__main__":
    main()
