"""The node's per-frame timing and counters as diagnostic_msgs/DiagnosticArray (what rqt_runtime_monitor shows).

One DiagnosticStatus whose values are key/value strings; the keys are the contract of DESIGN.md (tier,
provider, stage times, latency, rates, counters) so dashboards and tests read them by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def format_value(value: object) -> str:
    """Floats with 3 decimals (ms and Hz need no more), NaN as 'unknown', booleans lower-case, the rest str()."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "unknown" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def timing_msg(
    header: Header, name: str, level: str, message: str, hardware_id: str, values: Mapping[str, object]
) -> DiagnosticArray:
    """A DiagnosticArray with one status `name` at `level` ('ok', 'warn', 'error').

    `header` is the frame's own (stamp and frame_id), so a report can be matched to its image.
    """
    status = DiagnosticStatus(
        level=LEVELS[level], name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=key, value=format_value(value)) for key, value in values.items()],
    )
    return DiagnosticArray(header=header, status=[status])


def timing_values(msg: DiagnosticArray) -> dict[str, str]:
    """{key: value} of the first status: how a subscriber reads ~/timing."""
    return {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
