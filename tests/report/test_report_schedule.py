"""`camaudit schedule`: cron expressions, their systemd equivalents (checked by systemd's own
parser when it is installed), and a printed crontab command that really runs: a scan of this
test's loopback address, then a dated report with the exit code of DESIGN.md section 7."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camaudit.errors import UsageError
from camaudit.schedule import crontab_line, make_job, parse_cron, schedule_for, systemd_units

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.parametrize(
    ("expression", "on_calendar"),
    [
        ("0 2 * * *", "*-*-* 02:00:00"),
        ("30 6 * * 1-5", "Mon,Tue,Wed,Thu,Fri *-*-* 06:30:00"),
        ("*/15 * * * *", "*-*-* *:00,15,30,45:00"),
        ("0 3 1 */3 *", "*-01,04,07,10-01 03:00:00"),
        ("0 0 * * 7", "Sun *-*-* 00:00:00"),
        ("15 4 * * sun,sat", "Sun,Sat *-*-* 04:15:00"),
        ("@weekly", "Sun *-*-* 00:00:00"),
        ("0 22 * jan mon", "Mon *-01-* 22:00:00"),
    ],
)
def test_cron_to_systemd(expression: str, on_calendar: str) -> None:
    schedule = parse_cron(expression)
    assert schedule.on_calendar == on_calendar
    if SYSTEMD_ANALYZE:
        check = subprocess.run([SYSTEMD_ANALYZE, "calendar", on_calendar], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 2 * *", "needs five fields"),
        ("61 2 * * *", "minute: 61 is outside 0-59"),
        ("0 2 * * 1-9", "day of week: 9 is outside 0-7"),
        ("0 5-2 * * *", "runs backwards"),
        ("*/0 * * * *", "not a step"),
        ("x 2 * * *", "'x' is not a number"),
    ],
)
def test_bad_cron(expression: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_cron(expression)


def test_every_words() -> None:
    assert schedule_for("daily", "03:15").cron == "15 3 * * *"
    assert schedule_for("weekly").on_calendar == "Mon *-*-* 02:00:00"
    with pytest.raises(UsageError, match="not a time of day"):
        schedule_for("daily", "25:00")


def test_systemd_cannot_say_day_or_weekday(tmp_path: Path) -> None:
    plan = parse_cron("0 2 1 * 1")
    assert plan.on_calendar is None
    with pytest.raises(UsageError, match="use --print cron"):
        systemd_units(make_job(["10.0.0.0/24"], tmp_path / "a.db"), plan)


def test_systemd_units(tmp_path: Path) -> None:
    job = make_job(["10.20.0.0/24"], tmp_path / "audit 100%.db", fail_on="medium", lang="nl")
    units = systemd_units(job, schedule_for("daily", "03:15"))
    service, timer = units["camaudit-audit.service"], units["camaudit-audit.timer"]
    assert "OnCalendar=*-*-* 03:15:00" in timer and "Persistent=true" in timer
    assert "ExecStart=-" in service and "Type=oneshot" in service
    report_line = next(line for line in service.splitlines() if line.startswith("ExecStart=") and " report " in line)
    assert "--require-complete --fail-on medium --lang nl" in report_line
    assert "--scan-id-from" in report_line and "--scan latest" not in report_line
    scan_line = next(line for line in service.splitlines() if line.startswith("ExecStart=-"))
    assert "--scan-id-file" in scan_line and "ExecStartPre=/bin/rm -f" in service
    assert '"' + str(tmp_path / "audit 100%%.db") + '"' in report_line, "spaces quoted, % doubled for systemd"
    if SYSTEMD_ANALYZE:
        for name, text in units.items():
            (tmp_path / name).write_text(text)
        check = subprocess.run([SYSTEMD_ANALYZE, "verify", str(tmp_path / "camaudit-audit.service"), str(tmp_path / "camaudit-audit.timer")],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        problems = [line for line in check.stderr.splitlines() if "camaudit-audit" in line and "network-online" not in line]
        assert problems == [], check.stderr


def test_the_printed_crontab_command_runs(tmp_path: Path) -> None:
    """The command cron would run: a real scan of 127.82.7.9 (nothing listens there; loopback,
    this module's own address), then the dated report. No finding: exit 0."""
    db = tmp_path / "audit.db"
    job = make_job(["127.82.7.9"], db, report_dir=tmp_path / "reports", fmt="json")
    line = crontab_line(job, schedule_for("daily"))
    schedule, command = line.splitlines()[-1].split(" ", 5)[:5], line.splitlines()[-1].split(" ", 5)[5]
    assert schedule == ["0", "2", "*", "*", "*"]
    run = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (report,) = (tmp_path / "reports").glob("camaudit-*.json")
    assert report.name.startswith("camaudit-2") and len(report.name) == len("camaudit-20261129-142000-abcdef12.json")
    assert "no findings" in run.stderr
    # A second run keeps the history: two scans in the store, two reports on disk.
    subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=120, check=True)
    assert len(list((tmp_path / "reports").glob("camaudit-*.json"))) == 2


def test_default_units_fail_on_high_explicitly(tmp_path: Path) -> None:
    """report and scan exit 0 whatever they found unless --fail-on is given: the scheduled
    report step must say --fail-on high itself, or the alert never fires."""
    job = make_job(["10.20.0.0/24"], tmp_path / "a.db")
    assert job.report_argv()[job.report_argv().index("--fail-on") + 1] == "high"
    assert "--fail-on high" in crontab_line(job, schedule_for("daily"))


def test_a_failed_scheduled_scan_is_not_reported_as_today(tmp_path: Path) -> None:
    """The crontab command after a scan that records nothing (its target list is missing, exit 2):
    the report step exits 3 and writes no report, although the store holds an earlier scan."""
    db = tmp_path / "audit.db"
    good = make_job(["127.82.7.10"], db, report_dir=tmp_path / "reports", fmt="json")
    first = subprocess.run(["/bin/sh", "-c", crontab_line(good, schedule_for("daily")).splitlines()[-1].split(" ", 5)[5]],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert first.returncode == 0, first.stderr
    broken = make_job([f"@{tmp_path / 'no-such-targets.txt'}"], db, report_dir=tmp_path / "reports", fmt="json")
    run = subprocess.run(["/bin/sh", "-c", crontab_line(broken, schedule_for("daily")).splitlines()[-1].split(" ", 5)[5]],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 3 and "no report written" in run.stderr, run.stderr
    assert len(list((tmp_path / "reports").glob("camaudit-*.json"))) == 1


def test_the_command_prints_both(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "camaudit", "schedule", "10.20.0.0/24", "--db", str(tmp_path / "a.db")]
    cron = subprocess.run([*base, "--every", "30 6 * * 1-5", "--print", "cron"], capture_output=True, text=True, timeout=60)
    assert cron.returncode == 0 and cron.stdout.splitlines()[-1].startswith("30 6 * * 1-5 mkdir -p ")
    systemd = subprocess.run([*base, "--every", "weekly", "--print", "systemd"], capture_output=True, text=True, timeout=60)
    assert systemd.returncode == 0 and "OnCalendar=Mon *-*-* 02:00:00" in systemd.stdout
    bad = subprocess.run([*base, "--every", "often", "--print", "cron"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a cron expression" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("every", "slot"),
    [("daily", "2026-12-04"), ("weekly", "2026-W49"), ("30 6 * * 1-5", "2026-12-04T06:30")],
)
def test_a_firing_belongs_to_one_slot_of_its_schedule(every: str, slot: str) -> None:
    import datetime as dt

    from camaudit.schedule import current_slot

    fired = dt.datetime(2026, 12, 4, 6, 30, 41, tzinfo=dt.UTC)
    assert current_slot(every, fired) == slot
    # A timer that fires again within the slot (a catch-up, a second centre) names the same slot.
    assert current_slot(every, fired + dt.timedelta(seconds=10)) == slot


def test_the_fleet_form_queues_the_sites_scan_once_per_slot(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    made = subprocess.run([sys.executable, "-m", "camaudit", "fleet", "init", str(fleet_dir), "--site", "pool",
                           "--site", "yard"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    base = [sys.executable, "-m", "camaudit", "schedule", "10.1.0.0/24", "--fleet", str(fleet_dir / "central.toml")]
    units = subprocess.run([*base, "--site", "pool", "--every", "daily", "--print", "systemd", "--name", "pool-nightly"],
                           capture_output=True, text=True, timeout=60)
    assert units.returncode == 0, units.stderr
    [exec_line] = [line for line in units.stdout.splitlines() if line.startswith("ExecStart=")]
    assert " fleet scan --fleet " in exec_line and " --site pool 10.1.0.0/24 " in exec_line
    assert exec_line.endswith("--schedule pool-nightly --every daily")
    assert "OnCalendar=*-*-* 02:00:00" in units.stdout
    cron = subprocess.run([*base, "--site", "yard", "--every", "weekly", "--print", "cron"], capture_output=True,
                          text=True, timeout=60)
    assert cron.returncode == 0 and cron.stdout.splitlines()[-1].startswith("0 2 * * 1 ")
    unknown = subprocess.run([*base, "--site", "street", "--every", "daily", "--print", "cron"], capture_output=True,
                             text=True, timeout=60)
    assert unknown.returncode == 2 and "site 'street' is not in this fleet" in unknown.stderr
    alone = subprocess.run([*base, "--every", "daily", "--print", "cron"], capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2 and "--fleet and --site go together" in alone.stderr
