"""An example application module for `conductor worker --app shop_tasks`.

Run it from a directory holding this file (see docs/tasks.md, "A complete example"):

    conductor enqueue --app shop_tasks --payload '{"task": "resize_image", "path": "cat.png"}'
    conductor worker --app shop_tasks --queue default,images --burst
"""

from __future__ import annotations

import time

from conductor import Backoff, current_job, task


@task("resize_image", queue="images", priority="high", max_retries=5, timeout=30)
def resize_image(path: str, width: int = 800) -> str:
    """Simulates resizing an image; stops early if the job is cancelled or times out."""
    job = current_job()
    for _step in range(5):
        if job.sleep(0.02):  # True once the job is cancelled (or timed out)
            return "stopped"
    return f"{path} resized to {width}px (job {job.job_id}, attempt {job.attempt})"


@task("charge_card", max_retries=2, backoff=Backoff(base=0.05, cap=5))
def charge_card(order_id: int, amount_cents: int) -> None:
    """Fails on its first attempt, to show a retry with backoff."""
    if current_job().attempt == 1:
        raise ConnectionError(f"payment gateway timed out for order {order_id}")


@task("send_email")
def send_email(email: str, subject: str = "Hello") -> None:
    """Replaces conductor's bundled `send_email` example for this worker."""
    print(f"pretend-sending {subject!r} to {email}")


@task("slow_report", timeout=0.5, max_retries=0)
def slow_report(pages: int = 10) -> None:
    """Ignores cancellation and runs past its timeout: the attempt fails."""
    time.sleep(pages * 0.5)
