"""Input stamps the tracker refuses, folds in or restarts on, and stall detection."""

import math

import pytest

from facetrack_ros.core.input_guard import (InputMonitor, judge_stamp, StallWatch, StampLimits,
                                            StampVerdict)

LIMITS = StampLimits(reorder_window=2.0, max_skew=5.0, max_age=60.0)
NOW = 1_750_000_000.0
YEAR_2038 = 2_147_483_000.0


@pytest.mark.parametrize('stamp, latest, clock, verdict', [
    (NOW, NOW - 0.1, NOW + 0.2, StampVerdict.CURRENT),
    (NOW, -math.inf, NOW, StampVerdict.CURRENT),            # the first frame
    (NOW - 1.0, NOW, NOW + 0.3, StampVerdict.LATE),         # reordered: folded in
    (NOW - 3.0, NOW, NOW + 0.3, StampVerdict.TOO_LATE),     # too late, clock went on
    (YEAR_2038, NOW, NOW, StampVerdict.IN_FUTURE),          # issue 9, 5
    (NOW + 4.0, NOW, NOW, StampVerdict.CURRENT),            # within the clock skew
    (NOW - 3600, NOW, NOW, StampVerdict.TOO_OLD),           # a bag replayed without sim time
    (100.0, 160.0, 100.5, StampVerdict.TIME_JUMP),          # sim time looped back
    (100.0, 160.0, None, StampVerdict.TOO_LATE),            # no clock: cannot tell
    (YEAR_2038, NOW, None, StampVerdict.CURRENT),           # no clock: only order is checked
    (math.nan, NOW, NOW, StampVerdict.TOO_OLD),
    (math.inf, NOW, NOW, StampVerdict.IN_FUTURE),
])
def test_stamp_verdicts(stamp, latest, clock, verdict) -> None:
    """Each kind of stamp gets its verdict; refused ones are flagged as refused."""
    assert judge_stamp(stamp, latest, clock, LIMITS) is verdict
    assert verdict.refused == (verdict in (StampVerdict.TOO_LATE, StampVerdict.TOO_OLD,
                                           StampVerdict.IN_FUTURE))


def test_limits_are_checked() -> None:
    """Negative or non-finite bounds raise ValueError naming the bound."""
    with pytest.raises(ValueError, match='max_skew'):
        StampLimits(1.0, -1.0, 1.0).validate()
    LIMITS.validate()


def test_stall_watch_reports_a_stall_once_and_its_end() -> None:
    """A stall begins once after timeout without input, and ends with the next input."""
    watch = StallWatch(10.0, start=0.0)
    assert not watch.check(9.9)
    assert watch.check(10.0) and watch.stalled
    assert not watch.check(20.0), 'reported once'
    assert watch.idle(20.0) == 20.0
    assert watch.arrived(21.0) and not watch.stalled
    assert not watch.arrived(21.5)
    assert not watch.check(31.0) and watch.check(31.5)
    with pytest.raises(ValueError, match='timeout'):
        StallWatch(0.0, 0.0)


def test_input_monitor_says_what_is_wrong() -> None:
    """A refusal warns for a while, naming the offset; a stall warns until input returns."""
    monitor = InputMonitor(LIMITS, timeout=10.0, start=0.0, refused_warn_s=10.0)
    assert monitor.warning(1.0) is None
    assert monitor.judge(YEAR_2038, NOW, NOW, now=2.0) is StampVerdict.IN_FUTURE
    assert monitor.warning(3.0).startswith('refused detections stamped +397')
    assert 'IN_FUTURE' in monitor.warning(3.0)
    assert monitor.judge(NOW, NOW - 1, NOW, now=4.0) is StampVerdict.CURRENT
    monitor.stall.arrived(4.0)
    assert monitor.warning(12.1) is None
    assert monitor.stall.check(14.0)
    assert monitor.warning(15.0) == 'input stalled: no detections for 11 s'
    with pytest.raises(ValueError, match='reorder_window'):
        InputMonitor(StampLimits(-1.0, 1.0, 1.0), 1.0, 0.0)
