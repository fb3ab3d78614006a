"""etok's two exact-semantics budget searches as plain Python, to drive the official model's forward
(etok.tools.official.run). Our own code: a port of etok's `TokenBudgetSearch`
(Sources/EtokTokenizer/TokenBudgetSearch.swift, strategies `binary` and `fast`) so that the
official code can run the same search etok runs. Kept counts are kept tokens (a block's first n),
and the answer is the smallest evaluated count whose MSE is at most the threshold, else max.

`evaluate(n) -> mse` runs one pass at kept count n; `adopt(n)` is called when the answer so far
becomes n (the caller keeps that pass's state, as etok commits from the pass that measured it).
Pure Python, no numpy: python/tests/tools/test_official.py runs it on synthetic curves.
"""

from __future__ import annotations

import math

START_WITHOUT_HINT = 0.35   # TokenBudgetSearch.startWithoutHint
PREDICTED_ROUNDS = 6        # .predictedRounds
AIM_ABOVE = 0.5             # .aimAbove
PRIOR_SLOPE = -0.75         # .priorSlope
SLOPE_BASELINE = 0.1        # .slopeBaseline


class Probe:
    """Which counts were measured, the bracket and the answer so far (etok's `Probe`)."""

    def __init__(self, threshold, min_toks, max_toks, evaluate, adopt):
        self.threshold, self.lo_bound, self.hi_bound = threshold, min_toks, max_toks
        self.evaluate, self.adopt = evaluate, adopt
        self.measured: dict = {}
        self.passes = 0
        self.best = None                  # smallest passing count
        self.largest_failing = min_toks - 1
        self.answer = None

    @property
    def upper(self):
        return self.best if self.best is not None else self.hi_bound + 1

    def run(self, n):
        if n in self.measured or not (self.lo_bound <= n <= self.hi_bound):
            return
        e = self.evaluate(n)
        self.passes += 1
        self.measured[n] = e
        if e <= self.threshold and n < self.upper:
            self.best = n
        up = self.upper
        failing = [k for k, v in self.measured.items() if v > self.threshold and k < up]
        self.largest_failing = max(failing) if failing else self.lo_bound - 1
        now = self.best if self.best is not None else (self.hi_bound if self.hi_bound in self.measured else None)
        if now is not None and now != self.answer:
            self.answer = now
            self.adopt(now)

    @property
    def exhausted(self):
        if self.best is None and self.hi_bound in self.measured:
            return True
        return self.upper - self.largest_failing <= 1

    def bisect(self):
        while not self.exhausted:
            self.run((self.largest_failing + self.upper) // 2)

    def predicted_crossing(self):
        target = math.log(self.threshold)

        def point(n):
            e = self.measured.get(n)
            if n <= 0 or e is None or e <= 0:
                return None
            return math.log(n), math.log(e)

        slope = PRIOR_SLOPE
        if self.best is not None and self.largest_failing >= self.lo_bound:
            a, b = point(self.largest_failing), point(self.best)
            if a is None or b is None:
                return None
            if b[1] < a[1]:
                slope = (b[1] - a[1]) / (b[0] - a[0])
            anchor = b
        else:
            side = sorted(k for k in self.measured if self.best is None or self.measured[k] <= self.threshold)
            nearest = self.best if self.best is not None else (side[-1] if side else None)
            p = point(nearest) if nearest is not None else None
            if p is None:
                return None
            others = list(reversed(side)) if self.best is None else side
            for far in others:
                q = point(far)
                if q is not None and abs(q[0] - p[0]) >= SLOPE_BASELINE:
                    if q[1] != p[1]:
                        measured_slope = (q[1] - p[1]) / (q[0] - p[0])
                        if measured_slope < 0:
                            slope = measured_slope
                    break
            anchor = p
        x = anchor[0] + (target - anchor[1]) / slope
        if not math.isfinite(x):
            return None
        return math.exp(x)

    def predict(self, hint, tolerance):
        start = hint if hint is not None else int(_round(self.lo_bound + START_WITHOUT_HINT * (self.hi_bound - self.lo_bound)))
        self.run(min(max(start, self.lo_bound), self.hi_bound))
        rounds = 0
        while not self.exhausted:
            if self.best is not None and (self.best - self.largest_failing - 1) <= tolerance * self.best:
                break
            rounds += 1
            lo, hi = self.largest_failing, self.upper
            nxt = (lo + hi) // 2
            crossing = self.predicted_crossing() if rounds <= PREDICTED_ROUNDS else None
            if crossing is not None:
                c = min(max(crossing, float(self.lo_bound)), float(self.hi_bound))
                if self.best is not None:
                    d = tolerance * self.best
                    aim = min(self.best - 1 - int(math.floor(d)), int(_round(c + AIM_ABOVE * d)))
                else:
                    d = tolerance * (lo + 1)
                    aim = max(lo + 1 + int(math.ceil(d)), int(_round(c + AIM_ABOVE * d)))
                nxt = min(max(aim, lo + 1), hi - 1)
            before = len(self.measured)
            if lo < nxt < hi:
                self.run(nxt)
            if len(self.measured) == before:
                self.run((lo + hi) // 2)

    def finish(self):
        if self.answer is None:
            self.run(self.hi_bound)
        return self.answer


def _round(x: float) -> float:
    """Swift's Double.rounded(): to nearest, ties away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def choose(strategy, threshold, min_toks, max_toks, evaluate, adopt=lambda n: None, hint=None,
           tolerance=0.04):
    """-> (kept count, passes). strategy: 'binary' or 'fast'."""
    p = Probe(threshold, min_toks, max_toks, evaluate, adopt)
    if strategy == "binary":
        p.bisect()
    elif strategy == "fast":
        p.predict(hint, tolerance)
    else:
        raise ValueError(strategy)
    return p.finish(), p.passes
