"""What the tracker does with an input's stamp, and when its input has stalled.

Time in the tracker is camera time: the stamps of the frames it processed. judge_stamp() keeps a
single bad stamp from moving that time (a message stamped in 2038 would otherwise end every
appearance), folds slightly late frames in, and tells a genuine jump back of the node's own
clock (a replay loop under use_sim_time) from a stray old message. StallWatch notices on the
wall clock that input stopped (camera gone, detector dead).
"""

from dataclasses import dataclass
import enum
import math


class StampVerdict(enum.Enum):
    """How to treat one input stamp."""

    CURRENT = 1    # at or after the latest processed frame: process it
    LATE = 2       # a little older than the latest frame: fold it in as evidence
    TIME_JUMP = 3  # the node's clock itself went back (replay loop, sim time reset): restart
    TOO_LATE = 4   # older than the reorder window while the clock did not go back: refuse
    TOO_OLD = 5    # further behind the node's clock than max_age: refuse
    IN_FUTURE = 6  # further ahead of the node's clock than max_skew: refuse

    @property
    def refused(self) -> bool:
        """True for the verdicts whose input is dropped (and counted)."""
        return self in (StampVerdict.TOO_LATE, StampVerdict.TOO_OLD, StampVerdict.IN_FUTURE)


@dataclass(frozen=True)
class StampLimits:
    """Bounds on input stamps [s].

    reorder_window: how much older than the latest processed frame a frame may be and still
    count (as evidence of presence).
    max_skew: how far ahead of the node's clock a stamp may be (clock offset between machines).
    max_age: how far behind the node's clock a stamp may be (transport and processing delay).
    """

    reorder_window: float
    max_skew: float
    max_age: float

    def validate(self) -> None:
        """Raise ValueError naming a bound that is negative or not finite."""
        for name, value in vars(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0 s, got {value}')


def judge_stamp(stamp: float, latest: float, clock: float | None,
                limits: StampLimits) -> StampVerdict:
    """Return how to treat an input stamped stamp.

    latest: stamp of the latest processed frame (-inf before the first).
    clock: the node's clock (ROS time: sim time under use_sim_time), or None while unknown
    (sim time before the first /clock); without it only the order of stamps is checked.
    A stamp older than the reorder window is a time jump when the clock itself is now more than
    max_skew behind the latest frame, which it never is unless it went back.
    """
    if not math.isfinite(stamp):
        return StampVerdict.IN_FUTURE if stamp > 0 else StampVerdict.TOO_OLD
    if clock is not None:
        if stamp > clock + limits.max_skew:
            return StampVerdict.IN_FUTURE
        if stamp < clock - limits.max_age:
            return StampVerdict.TOO_OLD
    if stamp >= latest:
        return StampVerdict.CURRENT
    if stamp >= latest - limits.reorder_window:
        return StampVerdict.LATE
    if clock is not None and clock < latest - limits.max_skew:
        return StampVerdict.TIME_JUMP
    return StampVerdict.TOO_LATE


class StallWatch:
    """Notices on a monotonic clock when inputs stop arriving for timeout seconds."""

    def __init__(self, timeout: float, start: float) -> None:
        """Watch from start [s, monotonic]; no input by start + timeout is a stall too."""
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f'input timeout must be > 0 s, got {timeout}')
        self._timeout = timeout
        self._last = start
        self.stalled = False

    def arrived(self, now: float) -> bool:
        """Note an input at now; return True if it ends a stall."""
        self._last = now
        resumed, self.stalled = self.stalled, False
        return resumed

    def check(self, now: float) -> bool:
        """Return True once when a stall begins (no input for timeout seconds)."""
        if self.stalled or now - self._last < self._timeout:
            return False
        self.stalled = True
        return True

    def idle(self, now: float) -> float:
        """Return how long no input arrived [s]."""
        return now - self._last


class InputMonitor:
    """The tracker's input: stamps judged (refusals remembered), stalls noticed, a warning.

    Times are on a monotonic clock [s]; a refusal keeps the warning up for refused_warn_s.
    """

    def __init__(self, limits: StampLimits, timeout: float, start: float,
                 refused_warn_s: float = 10.0) -> None:
        """Check limits; watch for stalls from start."""
        limits.validate()
        self.limits = limits
        self.stall = StallWatch(timeout, start)
        self._refused_warn_s = refused_warn_s
        self._refused_at = -math.inf
        self.refusal = ''  # what the latest refusal was

    def judge(self, stamp: float, latest: float, clock: float | None,
              now: float) -> StampVerdict:
        """Return judge_stamp's verdict on stamp; remember a refusal and why."""
        verdict = judge_stamp(stamp, latest, clock, self.limits)
        if verdict.refused:
            self._refused_at = now
            where = (f'{stamp - clock:+.1f} s from the node clock' if clock is not None
                     else f'{stamp - latest:+.1f} s from the latest frame')
            self.refusal = f'refused detections stamped {where} ({verdict.name})'
        return verdict

    def warning(self, now: float) -> str | None:
        """Return what is wrong with the input now, or None."""
        if self.stall.stalled:
            return f'input stalled: no detections for {self.stall.idle(now):.0f} s'
        if now - self._refused_at < self._refused_warn_s:
            return self.refusal
        return None
