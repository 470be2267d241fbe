from types import SimpleNamespace

from vtasks.core.retry import ExponentialBackoff, no_delay, retry_delay


def result(attempts: int) -> SimpleNamespace:
    return SimpleNamespace(attempts=attempts)


def test_exponential_backoff_grows_and_caps_without_jitter():
    policy = ExponentialBackoff(base=1, factor=2, cap=5, jitter=False)
    assert [policy(ValueError(), result(n)) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_jitter_stays_within_the_delay():
    policy = ExponentialBackoff(base=1, factor=2, cap=100)
    assert all(0 <= policy(ValueError(), result(3)) <= 4 for _ in range(100))


def test_allow_list_and_base_exceptions():
    policy = ExponentialBackoff(retry_on=(ConnectionError,), jitter=False)
    assert policy(ConnectionResetError(), result(1)) == 1
    assert policy(ValueError(), result(1)) is None
    assert ExponentialBackoff()(SystemExit(1), result(1)) is None


def test_retry_delay_stops_at_max_attempts_and_never_goes_negative():
    assert retry_delay(None, ValueError(), result(1), attempt=1, max_attempts=3) == 0.0
    assert retry_delay(None, ValueError(), result(3), attempt=3, max_attempts=3) is None
    assert retry_delay(lambda e, r: -5, ValueError(), result(1), attempt=1, max_attempts=2) == 0.0
    assert (
        retry_delay(lambda e, r: None, ValueError(), result(1), attempt=1, max_attempts=2) is None
    )
    assert no_delay(KeyboardInterrupt(), result(1)) is None
