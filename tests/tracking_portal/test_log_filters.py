"""Links that open a parcel or change someone's subscriptions stay out of
log files (tracking_portal/log_filters.py), in the web process and in
Celery's workers."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from django.conf import settings
from django.core import signing

from tracking_portal.log_filters import mask_tokens

BASE_DIR = Path(settings.BASE_DIR)
TRACKING = "http://127.0.0.1:8000/t/" + "Qx7_k2" + "A" * 37 + "/"
# Signed the way the unsubscribe and confirmation links are.
UNSUBSCRIBE = "http://127.0.0.1:8000/unsubscribe/" + signing.dumps(12345, salt="s", compress=True) + "/"
CONFIRM = "http://127.0.0.1:8000/subscribe/confirm/" + signing.dumps([12345, "x"], salt="s", compress=True) + "/"


def test_tracking_unsubscribe_and_confirmation_tokens_are_masked():
    masked = mask_tokens(f"links {TRACKING} {UNSUBSCRIBE} {CONFIRM} done")
    assert masked == (
        "links http://127.0.0.1:8000/t/Qx7_k2…/ http://127.0.0.1:8000/unsubscribe/…/"
        " http://127.0.0.1:8000/subscribe/confirm/…/ done"
    )


def test_paths_without_a_token_are_left_alone():
    text = "POST /t/abc/subscribe/ and /hooks/twilio/inbound/ and /unsubscribe/"
    assert mask_tokens(text) == text


WORKER = textwrap.dedent(
    """
    import logging, sys
    from tracking_portal.celery import app

    # What `celery worker` does before its first task: the Django fixup
    # sets Django up (LOGGING included), then the worker sets up logging.
    app.loader.init_worker()
    app.log.setup(logging.INFO, None, redirect_stdouts=False, colorize=False, hostname="w1@test")

    from celery.app import trace
    from celery.utils.log import get_task_logger

    tracking, unsubscribe = sys.argv[1], sys.argv[2]
    trace.logger.info(
        trace.LOG_SUCCESS,
        {"id": "abc", "name": "notifications.send", "return_value": f"{tracking} {unsubscribe}", "runtime": 0.1},
    )
    get_task_logger("notifications.tasks").info("task logger: %s %s", tracking, unsubscribe)
    logging.getLogger("notifications.services").info("module logger: %s %s", tracking, unsubscribe)
    """
)


def test_a_worker_s_log_lines_come_out_masked(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tracking_portal.settings", "PYTHONPATH": str(BASE_DIR)}
    script = tmp_path / "worker_logging.py"
    script.write_text(WORKER)
    run = subprocess.run(
        [sys.executable, str(script), TRACKING, UNSUBSCRIBE],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    for line in ("succeeded in 0.1s", "task logger:", "module logger:"):
        assert line in output  # masked, not dropped
    assert TRACKING not in output and TRACKING.rsplit("/", 2)[-2] not in output
    assert UNSUBSCRIBE.rsplit("/", 2)[-2] not in output
    assert output.count("/t/Qx7_k2…/") == 3
    assert output.count("/unsubscribe/…/") == 3


def test_a_percent_encoded_signed_token_is_masked_whole():
    from tracking_portal.log_filters import mask_tokens

    line = '"GET /subscribe/confirm/eyJzIjoxMn0%3A1vQ%3Aabcdefghij/ HTTP/1.1" 200'
    assert mask_tokens(line) == '"GET /subscribe/confirm/…/ HTTP/1.1" 200'
    assert mask_tokens("/unsubscribe/MTI:1vQ:xyz123abc/") == "/unsubscribe/…/"
