"""The dashboard's throughput chart: bars scaled to the busiest minute, failures stacked below."""

from vtasks.admin.chart import HEIGHT, WIDTH, bars


def test_bars_are_scaled_to_the_busiest_minute_and_fill_the_width():
    drawn = bars([("10:00", 0, 0), ("10:01", 3, 1), ("10:02", 2, 0)])
    assert [b.ok_height + b.failed_height for b in drawn] == [0, HEIGHT, HEIGHT / 2]
    busiest = drawn[1]
    assert busiest.failed_y == HEIGHT - HEIGHT / 4 and busiest.ok_y == 0
    assert drawn[-1].x + drawn[-1].width <= WIDTH
    assert busiest.title == "10:01: 3 successful, 1 failed"


def test_no_minutes_no_bars():
    assert bars([]) == []
