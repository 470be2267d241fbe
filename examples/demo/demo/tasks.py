"""Demo tasks: sync, async, failing, retried and delayed."""

import asyncio

from django.tasks import task

from vtasks import task as vtask
from vtasks.core.retry import ExponentialBackoff


@task
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="emails", priority=10)
async def send_welcome_email(address: str) -> str:
    await asyncio.sleep(0.05)  # stands in for an SMTP round trip
    return f"welcome email sent to {address}"


@task(takes_context=True)
def report_attempt(context, name: str) -> str:
    return f"{name}: attempt {context.attempt} of task {context.task_result.id[:8]}"


@task
def divide(a: int, b: int) -> float:
    return a / b  # divide(1, 0) fails: its traceback is kept on the result


@vtask(
    takes_context=True,
    max_attempts=4,
    backoff=ExponentialBackoff(base=0.2, jitter=False, retry_on=(ConnectionError,)),
)
def flaky_fetch(context, url: str) -> str:
    """Fails on its first two attempts (a flaky network), then succeeds: retries with back-off."""
    if context.attempt < 3:
        raise ConnectionError(f"could not reach {url} (attempt {context.attempt})")
    return f"fetched {url} on attempt {context.attempt}"


@task
def remind(message: str) -> str:
    return f"reminder: {message}"
