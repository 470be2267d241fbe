import time

from vtasks.observability.health import Health, judge, write


def test_fresh_file_is_healthy_and_stale_or_crash_looping_is_not(tmp_path):
    path = tmp_path / "run" / "health"
    assert "no health file" in judge(path, 30)[0]
    now = time.time()
    write(path, Health(pid=1, written_at=now, children_expected=2, children_running=2))
    assert judge(path, 30, now=now + 5) == []
    assert "stale after 30s" in judge(path, 30, now=now + 31)[0]
    write(
        path,
        Health(
            pid=1, written_at=now, children_expected=2, children_running=1, crash_looping=["w.2"]
        ),
    )
    assert judge(path, 30, now=now) == ["crash-looping: w.2"]
    path.write_text("{not json")
    assert "unreadable" in judge(path, 30)[0]


def test_a_stale_process_table_row_is_unhealthy_unless_ignored(tmp_path):
    path = tmp_path / "health"
    now = time.time()
    fresh = dict(pid=1, written_at=now, children_expected=1, children_running=1)
    write(path, Health(**fresh, row_heartbeat_at=now - 5))
    assert judge(path, 30, now=now) == []
    write(path, Health(**fresh, row_heartbeat_at=now - 60))
    (problem,) = judge(path, 30, now=now)
    assert "process table" in problem and "60s ago" in problem
    assert judge(path, 30, now=now, check_row=False) == []
    write(path, Health(**fresh))  # a supervisor that keeps no row: nothing to judge
    assert judge(path, 30, now=now) == []


def test_the_reporter_writes_the_rows_last_heartbeat(tmp_path):
    from vtasks.runtime.report import Reporter, Tree
    from vtasks.runtime.topology import SupervisorSettings

    class Row:
        last_beat: float | None = None

        def beat(self) -> None:
            self.last_beat = 1234.5

        def close(self) -> None: ...

        def remove(self) -> None: ...

    path = tmp_path / "health"
    settings = SupervisorSettings(health_file=str(path), shutdown_timeout=5)
    row = Row()
    reporter = Reporter(row=row)
    tree = Tree(slots=[], live=0, stopping=False, started=0.0)
    reporter.tick(tree, settings, now=0.0)  # health first (no beat yet), then the beat
    import json

    first = json.loads(path.read_text())["row_heartbeat_at"]
    assert first is not None and abs(first - time.time()) < 5  # its start, while it has no beat
    reporter.tick(tree, settings, now=10.0)
    assert json.loads(path.read_text())["row_heartbeat_at"] == 1234.5
