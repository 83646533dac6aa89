"""XGBoost's collective, wired up by moon.

For an ``xgboost`` job moon runs XGBoost's tracker itself and tells each worker
where it is through ``DMLC_*`` environment variables. XGBoost 3 reads its
communicator's settings from keyword arguments rather than from the
environment, so a worker passes them on with :func:`communicator_args`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["MissingVariableError", "communicator_args"]

# XGBoost's tracker orders workers by comparing task IDs as strings; padding
# them to one width makes that order the numeric one, so that a worker's rank
# is its DMLC_TASK_ID. Eight digits outnumber the replicas a role may have.
_TASK_ID_WIDTH = 8


class MissingVariableError(RuntimeError):
    """A variable moon sets for xgboost workers is absent: the program is not
    running as a worker of a moon xgboost job."""

    def __init__(self, variable: str) -> None:
        super().__init__(
            f"{variable} is not set: moon sets it for the workers of an xgboost "
            "job; run this program as one (role 'worker' of a job with "
            "framework 'xgboost')"
        )
        self.variable = variable


def communicator_args(env: Mapping[str, str] | None = None) -> dict[str, str | int]:
    """The keyword arguments of ``xgboost.collective.CommunicatorContext`` for
    this worker, from the variables moon sets.

    Reads ``DMLC_TRACKER_URI``, ``DMLC_TRACKER_PORT`` and ``DMLC_TASK_ID``, and
    checks ``DMLC_NUM_WORKER`` when present (XGBoost learns the number of
    workers from the tracker, so it is not passed on).

    The task ID is zero-padded (``"00000003"``) so that the tracker, which
    compares IDs as strings, gives each worker the rank equal to its
    ``DMLC_TASK_ID``.

    Args:
        env: The variables to read; ``os.environ`` when left out.

    Returns:
        ``dmlc_tracker_uri`` (str), ``dmlc_tracker_port`` (int) and
        ``dmlc_task_id`` (str). Add others, such as ``dmlc_timeout``, to the
        dict before passing it on.

    Raises:
        MissingVariableError: A variable is not set; its name is in the message
            and in ``variable``.
        ValueError: A variable is set but is not a number where one is needed.

    Example::

        import xgboost as xgb
        from moon.xgboost import communicator_args

        with xgb.collective.CommunicatorContext(**communicator_args()):
            booster = xgb.train(params, dtrain)

    >>> args = communicator_args(
    ...     {"DMLC_TRACKER_URI": "10.0.0.5", "DMLC_TRACKER_PORT": "9091", "DMLC_TASK_ID": "3"}
    ... )
    >>> args["dmlc_tracker_uri"], args["dmlc_tracker_port"], args["dmlc_task_id"]
    ('10.0.0.5', 9091, '00000003')
    """
    if env is None:
        env = os.environ

    def get(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise MissingVariableError(name)
        return value

    def number(name: str, value: str) -> int:
        try:
            parsed = int(value)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
        if parsed < 0:
            raise ValueError(f"{name} must not be negative, got {value!r}")
        return parsed

    uri = get("DMLC_TRACKER_URI")
    port = number("DMLC_TRACKER_PORT", get("DMLC_TRACKER_PORT"))
    if not 0 < port < 65536:
        raise ValueError(f"DMLC_TRACKER_PORT must be a port number, got {port}")
    task = number("DMLC_TASK_ID", get("DMLC_TASK_ID"))
    workers = env.get("DMLC_NUM_WORKER", "").strip()
    if workers and task >= number("DMLC_NUM_WORKER", workers):
        raise ValueError(f"DMLC_TASK_ID must be below DMLC_NUM_WORKER ({workers}), got {task}")
    return {
        "dmlc_tracker_uri": uri,
        "dmlc_tracker_port": port,
        "dmlc_task_id": str(task).zfill(_TASK_ID_WIDTH),
    }
