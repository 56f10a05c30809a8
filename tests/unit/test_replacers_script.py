"""The script replacer: argv only (never a shell), bounded time, bounded output, clear failures.

Every program here is a small Python script run with this interpreter, so the tests need no
shell utilities; each test bounds its own runtime and checks no process outlives it.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from blocks.replacers import ScriptReplacer
from kafka_medic.replacers import ReplacerError, ScriptBrokerReplacer, run_bounded

HOSTILE_HOSTS = [
    "x; rm -rf / #",
    "$(touch {pwned})",
    "`touch {pwned}`",
    "a b\tc\nd",
    "'\"; echo injected",
    "--help",
    "*",
]


def _script(tmp_path: Path, body: str, name: str = "replace.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def _replacer(argv: list[str], **fields) -> ScriptBrokerReplacer:
    return ScriptBrokerReplacer(ScriptReplacer(argv=argv, **fields), cluster_name="c1")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("template", HOSTILE_HOSTS)
def test_hostile_host_is_one_verbatim_argv_element_never_a_shell(tmp_path: Path, template: str) -> None:
    pwned = tmp_path / "pwned"
    host = template.format(pwned=pwned)
    out = tmp_path / "argv.json"
    script = _script(
        tmp_path,
        f"""
        import json, os, sys
        json.dump({{"argv": sys.argv[1:], "env_host": os.environ["KAFKA_MEDIC_HOST"]}}, open({str(out)!r}, "w"))
        print("replaced")
        """,
    )
    r = _replacer([sys.executable, script, "--host={host}", "{host}", "{broker_id}"])
    outcome = r.replace(7, host)
    seen = json.loads(out.read_text())
    assert seen["argv"] == [f"--host={host}", host, "7"]
    assert seen["env_host"] == host
    assert not pwned.exists(), "the host string was interpreted by a shell"
    assert outcome.kind == "script" and outcome.action == "replace" and outcome.broker_id == 7
    assert outcome.details["exit_code"] == 0
    assert "replaced" in outcome.details["output_tail"]


def test_nonzero_exit_is_a_failure_with_the_code_and_last_output(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import sys
        print("terminating i-0abc")
        print("ERROR: capacity exhausted in us-east-1a", file=sys.stderr)
        sys.exit(3)
        """,
    )
    r = _replacer([sys.executable, script, "{host}"])
    with pytest.raises(ReplacerError) as info:
        r.replace(2, "10.0.0.2")
    msg = str(info.value)
    assert "exited with code 3" in msg
    assert "capacity exhausted" in msg  # stderr is captured too
    assert info.value.details["exit_code"] == 3
    assert info.value.changed is None  # a failed script may have changed anything: unknown


def test_killed_by_signal_is_named(tmp_path: Path) -> None:
    script = _script(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    with pytest.raises(ReplacerError, match="killed by signal SIGKILL"):
        _replacer([sys.executable, script]).replace(1, "h")


def test_timeout_kills_the_whole_process_group_with_a_clear_error(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = _script(
        tmp_path,
        f"""
        import subprocess, sys, time, os
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        print("waiting for the new instance...", flush=True)
        time.sleep(600)
        """,
    )
    r = _replacer([sys.executable, script], timeout_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(ReplacerError) as info:
        r.replace(4, "h")
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert "timed out after 2s" in msg or "timed out after 1s" in msg, msg
    assert "killed" in msg and "waiting for the new instance" in msg
    assert info.value.details["timed_out"] is True and info.value.details["exit_code"] is None
    assert elapsed < 1.5 + 5 + 10, elapsed  # timeout + kill grace + slack (loaded machine)
    parent, child = (int(p) for p in pids.read_text().split())
    assert _wait_gone(parent) and _wait_gone(child), "a timed-out replacer left processes behind"


def test_a_program_ignoring_sigterm_is_sigkilled(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn", flush=True)
        time.sleep(600)
        """,
    )
    t0 = time.monotonic()
    run = run_bounded([sys.executable, script], timeout_s=1.0, kill_grace_s=0.5)
    assert run.timed_out and run.exit_code is None
    assert time.monotonic() - t0 < 15


def test_megabytes_of_output_do_not_hang_and_memory_stays_bounded(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import sys
        line = b"x" * 1023 + b"\\n"
        for i in range(30 * 1024):  # 30 MiB
            sys.stdout.buffer.write(line)
        sys.stdout.buffer.write(b"THE END\\n")
        """,
    )
    t0 = time.monotonic()
    outcome = _replacer([sys.executable, script], timeout_s=120).replace(1, "h")
    assert time.monotonic() - t0 < 60
    assert outcome.details["output_bytes"] == 30 * 1024 * 1024 + len("THE END\n")
    assert outcome.details["output_tail"].rstrip().endswith("THE END")
    assert len(outcome.details["output_tail"]) <= 4 * 1024

    run = run_bounded([sys.executable, script], timeout_s=120)
    assert len(run.output_tail.encode()) <= 64 * 1024 and run.truncated


def test_a_leftover_child_holding_the_pipe_does_not_hang_the_replacer(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    script = _script(
        tmp_path,
        f"""
        import subprocess, sys
        # The child inherits stdout and outlives us; a naive communicate() would wait for it.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print("done")
        """,
    )
    t0 = time.monotonic()
    try:
        run = run_bounded([sys.executable, script], timeout_s=60, drain_after_exit_s=1.0)
        assert run.exit_code == 0 and "done" in run.output_tail
        assert time.monotonic() - t0 < 15
    finally:
        child = int(pid_file.read_text())
        if _alive(child):
            os.kill(child, 9)


def test_secret_env_reaches_the_program_but_never_the_output(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import os
        print("token is", os.environ["API_TOKEN"], "region", os.environ["REGION"])
        """,
    )
    r = _replacer([sys.executable, script], env={"REGION": "eu-west-1"}, secret_env={"API_TOKEN": "hunter2-s3cret"})
    outcome = r.replace(1, "h")
    assert "hunter2-s3cret" not in json.dumps(outcome.to_record())
    assert "token is ********** region eu-west-1" in outcome.details["output_tail"]


def test_missing_program_is_a_clear_error_and_nothing_changed(tmp_path: Path) -> None:
    with pytest.raises(ReplacerError, match="cannot start replacer program") as info:
        _replacer([str(tmp_path / "no-such-program"), "{host}"]).replace(1, "h")
    assert info.value.changed is False


def test_unknown_host_is_refused_when_the_command_needs_it(tmp_path: Path) -> None:
    script = _script(tmp_path, "print('x')\n")
    with pytest.raises(ReplacerError, match="host of broker 5 is unknown"):
        _replacer([sys.executable, script, "{host}"]).replace(5, "")
    # a command that only needs the broker id runs fine without a host
    assert _replacer([sys.executable, script, "{broker_id}"]).replace(5, "").details["exit_code"] == 0


def test_restart_is_not_offered_and_plan_changes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = _script(tmp_path, f"open({str(marker)!r}, 'w').write('ran')\n")
    r = _replacer([sys.executable, script, "{host}"])
    assert r.supports_restart is False
    with pytest.raises(ReplacerError, match="no restart_argv") as exc:
        r.restart(1, "h")
    assert exc.value.changed is False
    plan = r.plan(1, "h; reboot")
    assert plan.action == "plan" and plan.details["argv"] == [sys.executable, script, "h; reboot"]
    assert not marker.exists()


def test_restart_argv_runs_the_restart_program_not_the_replacement(tmp_path: Path) -> None:
    replaced, restarted = tmp_path / "replaced", tmp_path / "restarted"
    wipe = _script(tmp_path, f"open({str(replaced)!r}, 'w').write('x')\n")
    bounce = _script(tmp_path, "import sys\nopen(sys.argv[1], 'w').write(sys.argv[2])\n", name="restart.py")
    r = _replacer([sys.executable, wipe], restart_argv=[sys.executable, bounce, str(restarted), "{broker_id}@{host}"])
    assert r.supports_restart is True
    out = r.restart(4, "b4.local")
    assert out.action == "restart" and out.details["exit_code"] == 0
    assert restarted.read_text() == "4@b4.local" and not replaced.exists()
    assert r.host_state(4, "b4.local").restartable  # unknown host state: a bounded restart may help


@pytest.mark.parametrize(
    ("restart_argv", "message"),
    [("restart-broker --id {broker_id}", "not a shell command line"), ([], "at least the program"),
     (["x", "{disk}"], "disk")],
)  # fmt: skip
def test_bad_restart_argv_is_refused_at_the_edge(restart_argv: object, message: str) -> None:
    from pydantic import ValidationError

    from kafka_medic.settings.replacers import ScriptReplacerSettings

    with pytest.raises(ValidationError, match=message):
        ScriptReplacerSettings(argv=["replace"], restart_argv=restart_argv)
