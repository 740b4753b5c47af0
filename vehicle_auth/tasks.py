"""The bulk token refresh as a Celery task, for sites that outgrow cron (Celery is optional).

With Celery installed, `refresh_smartcar_tokens` is a shared task named
"vehicle_auth.refresh_smartcar_tokens"; schedule it with Celery beat, e.g. every 5 minutes:

    app.conf.beat_schedule = {
        "refresh-smartcar-tokens": {
            "task": "vehicle_auth.refresh_smartcar_tokens",
            "schedule": 300.0,
            "kwargs": {"concurrency": 4},
        },
    }

Without Celery it is a plain function, so this module can always be imported.
"""

from __future__ import annotations

from datetime import timedelta

try:
    from celery import shared_task
except ImportError:  # Celery is an optional dependency
    shared_task = None

TASK_NAME = "vehicle_auth.refresh_smartcar_tokens"


def refresh_smartcar_tokens(
    within_seconds: float = 600, keepalive_after_days: float = 45, concurrency: int = 4
) -> dict[str, int]:
    """Run `refresh.refresh_expiring_accounts()`; its counts as a dict (JSON-friendly).

    Arguments are plain numbers so that any Celery serializer can carry them.
    """
    # Imported here: Celery may import this module before Django's apps are ready.
    from vehicle_auth.refresh import refresh_expiring_accounts

    summary = refresh_expiring_accounts(
        within=timedelta(seconds=within_seconds),
        keepalive_after=timedelta(days=keepalive_after_days),
        concurrency=concurrency,
    )
    return summary.as_dict()


if shared_task is not None:
    # One run at a time is enough but overlapping runs are safe (row locks); a run that
    # finds the work done by the previous one only skips.
    refresh_smartcar_tokens = shared_task(name=TASK_NAME)(refresh_smartcar_tokens)
