"""Scheduled audits: the systemd units or the crontab line that run a scan, keep its history in
the store, write a dated report, and exit by DESIGN.md section 7 (0 clean, 1 findings at or
above ``--fail-on``, 2 configuration, 3 the run failed), so that the scheduler's own failure
handling (systemd ``OnFailure=``, cron's mail of any output) is the alert.

The job is two commands: ``camaudit scan --scan-id-file F`` (its exit code is not the job's: a
scan that found something must still be reported), then ``camaudit report --scan-id-from F
--require-complete --fail-on high``, whose exit code is: 3 when the scan recorded nothing (F holds
no id: the previous scan is never reported as today's) or did not complete, else 1 or 0 by the
findings. ``--fail-on`` is passed explicitly: without it report and scan exit 0 whatever they
found (DESIGN.md section 7). The report name carries the run's date and the scan's id
(``{date}``, ``{scan}``), so reports accumulate beside the database. Runs never overlap under systemd (a oneshot service); the store itself is safe for
concurrent runs (WAL, ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as _dt
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError

EVERY_WORDS = ("daily", "weekly")
PRINT_KINDS = ("systemd", "cron")
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: (name, low, high) of the five cron fields.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_SHORTHANDS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
               "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}  # fmt: skip


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, option: str = "a duration") -> float:
    """Seconds in ``26h``, ``7d``, ``90m``, ``2w`` or a plain number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", (text or "").lower())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{option} {text!r} is not a duration (examples: 26h, 7d, 90m)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def scan_age(started_at: str, now: _dt.datetime | None = None) -> float | None:
    """Seconds since a scan started (None when its time cannot be read)."""
    try:
        when = _dt.datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=_dt.UTC)
    return ((now or _dt.datetime.now(_dt.UTC)) - when).total_seconds()


def read_scan_id_file(path: str | Path) -> str | None:
    """The scan id that ``scan --scan-id-file`` wrote, or None when there is none: the scan
    failed before recording anything (it removes the file when it starts)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")[:200].strip()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return text if re.fullmatch(r"[0-9a-fA-F-]{8,64}", text) else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron expression and the same moments as a systemd ``OnCalendar=`` value."""

    cron: str
    on_calendar: str | None  # None when systemd cannot express it


def _expand(text: str, name: str, low: int, high: int, names: Sequence[str] = ()) -> list[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                raise UsageError(f"cron {name}: {step_text!r} is not a step (a positive number)")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, _, b = part.partition("-")
            start, end = _number(a, name, low, high, names), _number(b, name, low, high, names)
            if start > end:
                raise UsageError(f"cron {name}: the range {part!r} runs backwards")
        else:
            start = _number(part, name, low, high, names)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    return sorted(values)


def _number(text: str, name: str, low: int, high: int, names: Sequence[str]) -> int:
    lowered = text.lower()
    if names and lowered[:3] in [n.lower() for n in names] and len(lowered) >= 3:
        return [n.lower() for n in names].index(lowered[:3]) + (1 if name == "month" else 0)
    if not text.isdigit():
        raise UsageError(f"cron {name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise UsageError(f"cron {name}: {value} is outside {low}-{high}")
    return value


def parse_cron(expression: str) -> Schedule:
    """Validate a five-field cron expression (or @daily and the like) and translate it to
    systemd's calendar syntax."""
    expression = " ".join(expression.split())
    expression = _SHORTHANDS.get(expression.lower(), expression)
    fields = expression.split(" ")
    if len(fields) != 5:
        raise UsageError(f"{expression!r} is not a cron expression: it needs five fields (minute hour day month weekday)")
    expanded = []
    for text, (name, low, high) in zip(fields, _FIELDS, strict=True):
        names = _MONTHS if name == "month" else _DAYS if name == "day of week" else ()
        expanded.append(_expand(text, name, low, high, names))
    minutes, hours, days, months, weekdays = expanded
    weekdays = sorted({d % 7 for d in weekdays})  # 7 is Sunday too
    days_restricted = fields[2] != "*"
    weekdays_restricted = fields[4] != "*"
    on_calendar: str | None
    if days_restricted and weekdays_restricted:
        # cron runs when either the day of month or the weekday matches; systemd needs both.
        on_calendar = None
    else:
        def join(values: list[int], full: range, width: int = 2) -> str:
            return "*" if values == list(full) else ",".join(f"{v:0{width}d}" for v in values)

        date = f"*-{join(months, range(1, 13))}-{join(days, range(1, 32))}"
        clock = f"{join(hours, range(24))}:{join(minutes, range(60))}:00"
        dow = "" if len(weekdays) == 7 else ",".join(_DAYS[d] for d in weekdays) + " "
        on_calendar = f"{dow}{date} {clock}"
    return Schedule(expression, on_calendar)


def schedule_for(every: str, at: str = "02:00") -> Schedule:
    """``daily``, ``weekly`` (Mondays) at ``at`` (HH:MM), or a cron expression."""
    if every in EVERY_WORDS:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", at)
        if not match:
            raise UsageError(f"--at {at!r} is not a time of day (HH:MM, 24-hour)")
        hour, minute = int(match.group(1)), int(match.group(2))
        return parse_cron(f"{minute} {hour} * * {'*' if every == 'daily' else '1'}")
    return parse_cron(every)


def current_slot(every: str, now: _dt.datetime | None = None) -> str:
    """The slot of ``every`` that a firing at ``now`` belongs to: the UTC date for ``daily``,
    the ISO week for ``weekly``, the minute for a cron expression (cron fires once a minute at
    most). Two firings of one slot (a timer that caught up, a second centre) queue one job."""
    moment = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    if every == "daily":
        return moment.date().isoformat()
    if every == "weekly":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    parse_cron(every)  # a UsageError for what is no schedule at all
    return moment.strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True, slots=True)
class FleetJob:
    """A scheduled scan of one site of a fleet: the centre queues the job for the site's agent
    (``fleet scan --schedule NAME --every EVERY``), with a message id per (site, schedule, slot),
    so a double firing runs once. The scan's bundle is merged into the central store, where the
    estate report reads it."""

    targets: tuple[str, ...]
    fleet: Path
    site: str
    every: str
    name: str = "camaudit-audit"
    command: tuple[str, ...] = field(default_factory=lambda: default_command())

    def queue_argv(self) -> list[str]:
        return [*self.command, "fleet", "scan", "--fleet", str(self.fleet), "--site", self.site, *self.targets,
                "--schedule", self.name, "--every", self.every]  # fmt: skip


def fleet_systemd_units(job: FleetJob, schedule: Schedule) -> dict[str, str]:
    """The service and timer units, at the centre, that queue a site's scheduled scan."""
    _need_calendar(schedule)
    service = f"""# {job.name}.service: queue the scheduled scan of site {job.site} for its agent, written by
# `camaudit schedule --fleet`. Install at the centre: copy both units to /etc/systemd/system/, then
#   systemctl daemon-reload && systemctl enable --now {job.name}.timer
# Each firing queues one job per slot ({job.every}): a timer that fires twice for one slot queues
# it once. The agent's bundle is merged by `camaudit central serve`; report from the central store
# (`camaudit report --estate --max-age ...`).
[Unit]
Description=camaudit: queue the scheduled scan of site {job.site}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={_exec(job.queue_argv())}
UMask=0077
"""
    return {f"{job.name}.service": service, f"{job.name}.timer": _timer(job.name, f"site {job.site}", schedule)}


def fleet_crontab_line(job: FleetJob, schedule: Schedule) -> str:
    """One crontab line, at the centre, that queues a site's scheduled scan."""
    command = " ".join(shlex.quote(a) for a in job.queue_argv()).replace("%", "\\%")
    return (f"# camaudit: queue the scheduled scan of site {job.site} ({job.name}); one job per slot, however often it fires\n"
            f"{schedule.cron} {command}\n")


def _need_calendar(schedule: Schedule) -> None:
    if schedule.on_calendar is None:
        raise UsageError(
            f"cron {schedule.cron!r} restricts both the day of month and the weekday; cron runs on either, "
            "systemd only on both. Restrict one of them, or use --print cron"
        )


def _timer(name: str, what: str, schedule: Schedule) -> str:
    return f"""# {name}.timer: when {name}.service runs (cron equivalent: {schedule.cron}).
[Unit]
Description=Schedule of the camaudit camera audit of {what}

[Timer]
OnCalendar={schedule.on_calendar}
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
"""


@dataclass(frozen=True, slots=True)
class Job:
    """What a scheduled run does."""

    targets: tuple[str, ...]
    db: Path
    report_dir: Path
    fail_on: str = "high"
    lang: str = "en"
    fmt: str = "html"
    policy: Path | None = None
    config: Path | None = None
    name: str = "camaudit-audit"
    command: tuple[str, ...] = field(default_factory=lambda: default_command())

    @property
    def scan_id_file(self) -> Path:
        """Where the scan leaves its id for the report step (beside the database)."""
        return self.db.parent / f".{self.name}.scan-id"

    def scan_argv(self) -> list[str]:
        argv = [*self.command, "scan", *self.targets, "--db", str(self.db), "--quiet",
                "--scan-id-file", str(self.scan_id_file)]  # fmt: skip
        if self.config:
            argv += ["--config", str(self.config)]
        return argv

    def report_argv(self) -> list[str]:
        out = self.report_dir / f"camaudit-{{date}}-{{scan}}.{'md' if self.fmt == 'md' else self.fmt}"
        argv = [*self.command, "report", "--db", str(self.db), "--scan-id-from", str(self.scan_id_file), "--require-complete",
                "--fail-on", self.fail_on, "--lang", self.lang, "--format", self.fmt, "-o", str(out)]  # fmt: skip
        if self.policy:
            argv += ["--policy", str(self.policy)]
        return argv


def default_command() -> tuple[str, ...]:
    """How the scheduler should start camaudit: the script of this very installation (the
    one beside this Python; another on PATH may belong to another environment), else this
    Python with ``-m camaudit``."""
    beside = Path(sys.executable).parent / "camaudit"
    if beside.is_file():
        return (str(beside),)
    return (str(Path(sys.executable)), "-m", "camaudit")


def make_job(
    targets: Sequence[str],
    db: str | Path,
    *,
    report_dir: str | Path | None = None,
    **options: object,
) -> Job:
    """A job with absolute paths (schedulers start in another folder than the user's)."""
    if not targets:
        raise UsageError("name the targets the scheduled scan covers")
    db_path = Path(db).expanduser().resolve()
    folder = Path(report_dir).expanduser().resolve() if report_dir else db_path.parent / "reports"
    for key in ("policy", "config"):
        value = options.get(key)
        if value is not None:
            options[key] = Path(str(value)).expanduser().resolve()
    return Job(tuple(targets), db_path, folder, **options)  # type: ignore[arg-type]


def _systemd_quote(arg: str) -> str:
    # systemd expands %-specifiers and $VARIABLES in ExecStart=: double them. Quote what the
    # simple splitter would break (systemd.service(5), "Command lines").
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _exec(argv: Sequence[str]) -> str:
    return " ".join(_systemd_quote(a) for a in argv)


def systemd_units(job: Job, schedule: Schedule) -> dict[str, str]:
    """The service and timer units, by file name."""
    _need_calendar(schedule)
    targets = " ".join(job.targets)
    service = f"""# {job.name}.service: one camaudit audit of {targets}, written by `camaudit schedule`.
# Install: copy both units to /etc/systemd/system/, then
#   systemctl daemon-reload && systemctl enable --now {job.name}.timer
# The unit fails (exit 1) when a finding is at or above --fail-on {job.fail_on}, and with exit 3
# when the scan did not complete: `systemctl --failed` shows it. To be told, add
#   OnFailure=<your-alert-unit>@%n.service
# under [Unit]. Scans are kept in {job.db}; reports accumulate in {job.report_dir}.
[Unit]
Description=camaudit camera audit of {targets}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStartPre=/bin/mkdir -p {_systemd_quote(str(job.report_dir))}
# The scan writes its id here; the report reports that scan or, when there is none (the scan
# failed before recording anything), nothing, exit 3: never the previous scan as today's.
ExecStartPre=/bin/rm -f {_systemd_quote(str(job.scan_id_file))}
# The scan's own exit code is not the job's ("-"): the report below decides it.
ExecStart=-{_exec(job.scan_argv())}
ExecStart={_exec(job.report_argv())}
WorkingDirectory={_systemd_quote(str(job.db.parent))}
UMask=0077
Nice=10
"""
    timer = _timer(job.name, targets, schedule)
    return {f"{job.name}.service": service, f"{job.name}.timer": timer}


def crontab_line(job: Job, schedule: Schedule) -> str:
    """One crontab line (with a comment above it). cron mails whatever the job prints: the
    report's line about findings at or above --fail-on is the alert."""
    def quote(argv: Sequence[str]) -> str:
        # cron turns an unescaped % into a newline (crontab(5)).
        return " ".join(shlex.quote(a) for a in argv).replace("%", "\\%")

    report_dir = shlex.quote(str(job.report_dir)).replace("%", "\\%")
    id_file = shlex.quote(str(job.scan_id_file)).replace("%", "\\%")
    command = (f"mkdir -p {report_dir} && rm -f {id_file} && "
               f"{{ {quote(job.scan_argv())} >/dev/null; {quote(job.report_argv())}; }}")
    return (
        f"# camaudit audit of {' '.join(job.targets)}: scan, keep the history in {job.db}, write a dated report;\n"
        f"# exit 1 (and a line to mail) when a finding is at or above {job.fail_on}, 3 when the scan did not complete.\n"
        f"{schedule.cron} {command}\n"
    )
