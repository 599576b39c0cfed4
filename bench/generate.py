"""A deterministic synthetic auth.log / syslog mix for the benchmark.

``generate(path, lines)`` writes the same bytes on every machine (a seeded
``random.Random``). About 4% of the lines are events the benchmark rules alert
on (failed SSH logins, sudo failures, OOM kills, disk errors, ...); the rest is
the everyday noise of a server: cron, systemd, accepted logins, postfix, the
kernel firewall.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

HOSTS = ("web-1", "web-2", "db-1", "belka")
USERS = ("root", "admin", "ubuntu", "oracle", "test", "git", "deploy", "postgres", "pi", "guest")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "gamma", "kilo")
UNITS = ("nginx.service", "postgresql.service", "redis.service", "docker.service",
         "backup.service", "certbot.service", "apt-daily.service")

Line = Callable[[random.Random], str]


def _ip(r: random.Random) -> str:
    return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _pid(r: random.Random) -> int:
    return r.randint(300, 65000)


# everyday noise: what most of a log is
NOISE: list[tuple[int, Line]] = [
    (30, lambda r: f"CRON[{_pid(r)}]: pam_unix(cron:session): session "
                   f"{r.choice(('opened', 'closed'))} for user root"
                   + (" by (uid=0)" if r.random() < 0.5 else "")),
    (12, lambda r: f"CRON[{_pid(r)}]: (root) CMD (   cd / && run-parts --report "
                   "/etc/cron.hourly)"),
    (14, lambda r: f"systemd[1]: {r.choice(('Started', 'Starting', 'Finished', 'Stopped'))} "
                   f"{r.choice(UNITS)[:-8].title()} daemon."),
    (8, lambda r: f"systemd-logind[{_pid(r)}]: New session {r.randint(1, 9999)} of user "
                  f"{r.choice(USERS)}."),
    (2, lambda r: f"sshd[{_pid(r)}]: Accepted publickey for {r.choice(USERS)} from {_ip(r)} "
                  f"port {r.randint(1024, 65535)} ssh2: ED25519 SHA256:{r.randbytes(8).hex()}"),
    (8, lambda r: f"sshd[{_pid(r)}]: pam_unix(sshd:session): session opened for user "
                  f"{r.choice(USERS)}(uid=1000) by (uid=0)"),
    (3, lambda r: f"sshd[{_pid(r)}]: Received disconnect from {_ip(r)} port "
                  f"{r.randint(1024, 65535)}:11: disconnected by user"),
    (10, lambda r: f"kernel: [{r.randint(1, 999999)}.{r.randint(0, 999999):06d}] [UFW AUDIT] "
                   f"IN=eth0 OUT= MAC=00:16:3e:{r.randbytes(3).hex(':')} SRC={_ip(r)} DST=10.0.0.5 "
                   f"LEN=40 TOS=0x00 PREC=0x00 TTL=244 ID={r.randint(1, 65535)} PROTO=TCP "
                   f"SPT={r.randint(1024, 65535)} DPT={r.choice((22, 80, 443))} WINDOW=1024 SYN"),
    (8, lambda r: f"postfix/smtpd[{_pid(r)}]: connect from unknown[{_ip(r)}]"),
    (6, lambda r: f"postfix/qmgr[{_pid(r)}]: {r.randbytes(5).hex().upper()}: from=<"
                  f"{r.choice(WORDS)}@example.com>, size={r.randint(300, 90000)}, "
                  "nrcpt=1 (queue active)"),
    (6, lambda r: f"dhclient[{_pid(r)}]: DHCPACK of 10.0.0.{r.randint(2, 254)} from 10.0.0.1"),
    (2, lambda r: f"sudo[{_pid(r)}]: {r.choice(USERS)} : TTY=pts/{r.randint(0, 9)} ; PWD=/home/"
                  f"{r.choice(USERS)} ; USER=root ; COMMAND=/usr/bin/systemctl status "
                  f"{r.choice(UNITS)}"),
    (4, lambda r: f"dockerd[{_pid(r)}]: time=\"2026-11-28T03:{r.randint(10, 59)}:00Z\" level=info "
                  f"msg=\"ignoring event\" module=libcontainerd namespace=moby"),
    (4, lambda r: f"rsyslogd[{_pid(r)}]: [origin software=\"rsyslogd\" swVersion=\"8.2112.0\"] "
                  "rsyslogd was HUPed"),
    (3, lambda r: f"kernel: [{r.randint(1, 999999)}.{r.randint(0, 999999):06d}] "
                  f"EXT4-fs (sda{r.randint(1, 3)}): mounted filesystem with ordered data mode"),
]

# what the rules alert on: about 4% of the lines
EVENTS: list[tuple[int, Line]] = [
    (20, lambda r: f"sshd[{_pid(r)}]: Failed password for "
                   f"{r.choice(('', 'invalid user '))}{r.choice(USERS)} from {_ip(r)} "
                   f"port {r.randint(1024, 65535)} ssh2"),
    (10, lambda r: f"sshd[{_pid(r)}]: Invalid user {r.choice(USERS)}{r.randint(0, 99)} from "
                   f"{_ip(r)} port {r.randint(1024, 65535)}"),
    (6, lambda r: f"sshd[{_pid(r)}]: Connection closed by authenticating user "
                  f"{r.choice(USERS)} {_ip(r)} port {r.randint(1024, 65535)} [preauth]"),
    (4, lambda r: f"sshd[{_pid(r)}]: error: maximum authentication attempts exceeded for "
                  f"{r.choice(USERS)} from {_ip(r)} port {r.randint(1024, 65535)} ssh2 [preauth]"),
    (3, lambda r: f"sshd[{_pid(r)}]: Disconnected from invalid user {r.choice(USERS)} {_ip(r)} "
                  f"port {r.randint(1024, 65535)} [preauth]"),
    (3, lambda r: f"sudo[{_pid(r)}]: pam_unix(sudo:auth): authentication failure; logname="
                  f"{r.choice(USERS)} uid=1000 euid=0 tty=/dev/pts/1 ruser={r.choice(USERS)} "
                  "rhost=  user=" + r.choice(USERS)),
    (2, lambda r: f"sudo[{_pid(r)}]: {r.choice(USERS)} : user NOT in sudoers ; TTY=pts/0 ; "
                  "PWD=/tmp ; USER=root ; COMMAND=/bin/bash"),
    (2, lambda r: f"su[{_pid(r)}]: FAILED SU (to root) {r.choice(USERS)} on pts/{r.randint(0, 9)}"),
    (2, lambda r: f"kernel: [{r.randint(1, 999999)}.{r.randint(0, 999999):06d}] Out of memory: "
                  f"Killed process {_pid(r)} ({r.choice(('java', 'python3', 'node'))}) "
                  f"total-vm:{r.randint(10**5, 10**7)}kB, anon-rss:{r.randint(10**5, 10**6)}kB"),
    (2, lambda r: f"kernel: [{r.randint(1, 999999)}.{r.randint(0, 999999):06d}] "
                  f"EXT4-fs error (device sda{r.randint(1, 3)}): ext4_find_entry:1455: "
                  f"inode #{r.randint(2, 10**6)}: comm {r.choice(WORDS)}: "
                  "reading directory lblock 0"),
    (2, lambda r: f"systemd[1]: {r.choice(UNITS)}: Failed with result 'exit-code'."),
    (2, lambda r: f"postfix/smtpd[{_pid(r)}]: warning: unknown[{_ip(r)}]: SASL LOGIN "
                  "authentication failed: UGFzc3dvcmQ6"),
    (2, lambda r: f"useradd[{_pid(r)}]: new user: name={r.choice(WORDS)}, UID=1001, GID=1001, "
                  "home=/home/x, shell=/bin/bash, from=/dev/pts/0"),
    (1, lambda r: f"kernel: [{r.randint(1, 999999)}.{r.randint(0, 999999):06d}] "
                  f"{r.choice(('python3', 'node', 'nginx'))}[{_pid(r)}]: segfault at 0 ip "
                  f"00007f{r.randbytes(5).hex()} sp 00007ffd{r.randbytes(4).hex()} error 4 in "
                  "libc.so.6[7f0000000000+195000]"),
    (1, lambda r: f"fail2ban.actions[{_pid(r)}]: NOTICE [sshd] Ban {_ip(r)}"),
    (1, lambda r: f"kernel: [{r.randint(1, 999999)}.{r.randint(0, 999999):06d}] "
                  f"blk_update_request: I/O error, dev sdb, sector {r.randint(1, 10**9)} op "
                  "0x0:(READ) flags 0x0 phys_seg 1 prio class 0"),
]

#: share of lines drawn from EVENTS
EVENT_SHARE = 0.04


def _table(entries: list[tuple[int, Line]]) -> tuple[list[Line], list[int]]:
    return [f for _, f in entries], [w for w, _ in entries]


def generate(path: Path, lines: int, seed: int = 7) -> Path:
    """Write ``lines`` lines of synthetic log to ``path`` (the same bytes for the same args)."""
    r = random.Random(seed)
    noise, noise_w = _table(NOISE)
    events, events_w = _table(EVENTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    second = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        batch: list[str] = []
        for _ in range(lines):
            second += r.random() < 0.05
            stamp = f"Nov {1 + second // 86400 % 28:2d} {second // 3600 % 24:02d}:" \
                    f"{second // 60 % 60:02d}:{second % 60:02d}"
            kinds, weights = (events, events_w) if r.random() < EVENT_SHARE else (noise, noise_w)
            body = r.choices(kinds, weights)[0](r)
            batch.append(f"{stamp} {HOSTS[second // 977 % len(HOSTS)]} {body}\n")
            if len(batch) >= 10000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    return path
