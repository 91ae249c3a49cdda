"""infra/kafka/start.sh on a data dir that has gathered thousands of topics: the timeout says why."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.brokers import KAFKA_INFRA, free_port


def test_a_timeout_on_a_crowded_data_dir_names_the_cause_and_the_ways_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for i in range(520):  # what a day of test sessions used to leave behind
        (run / "data" / f"t{i:04d}.events-0").mkdir(parents=True)
    env = dict(os.environ, AIWATCH_KAFKA_DIR=str(run), KAFKA_PORT=str(free_port()),
               KAFKA_CONTROLLER_PORT=str(free_port()), KAFKA_START_TIMEOUT="1")
    try:
        done = subprocess.run(["bash", str(KAFKA_INFRA / "start.sh")], env=env, capture_output=True, text=True, timeout=180)
    finally:
        subprocess.run(["bash", str(KAFKA_INFRA / "stop.sh"), "--wipe"], env=env, capture_output=True, timeout=90)
    assert done.returncode != 0
    assert "broker not ready after 1s" in done.stderr
    assert "520 partition directories" in done.stderr and "KAFKA_START_TIMEOUT" in done.stderr
