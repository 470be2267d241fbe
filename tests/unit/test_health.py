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
