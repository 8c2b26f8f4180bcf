#!/usr/bin/python3
"""Writes fire_times.txt, the golden table for tests/dsl/fire_times_test.cc.

The values are computed without sluice's C++ code. A small cron matcher
below lists the wall-clock minutes an expression matches; croniter (Debian
package python3-croniter) lists them again and the two must agree for every
case written. Python's zoneinfo then turns wall times into instants under the
DST policy documented in docs/scheduling.md:

  * a wall time that exists once fires then;
  * a wall time inside a spring-forward gap fires at the first instant after
    the gap with on_dst_gap = "shift" (several such times in one gap fire
    once), and not at all with "skip";
  * a wall time inside a fall-back overlap fires at its first occurrence with
    on_dst_repeat = "first", its second with "last", both with "both";
  * fires are instants, so wall times landing on the same instant fire once.

Run from anywhere: /usr/bin/python3 tests/dsl/golden/gen_fire_times.py
It rewrites fire_times.txt next to itself. It is never run by the tests.
"""
import datetime as dt
import os
import sys
import zoneinfo

from croniter import croniter

UTC = dt.timezone.utc
CROSS_CHECK = True
POLICIES = [(g, r) for g in ("shift", "skip") for r in ("first", "last", "both")]


def utc(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso_utc(u):
    return u.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


MACROS = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()


def field_values(text, lo, hi, names=(), first_name=0):
    """The set of values a field names; day-of-week 7 becomes 0."""
    def value(tok):
        if tok.upper() in names:
            return names.index(tok.upper()) + first_name
        v = int(tok)
        assert lo <= v <= hi, text
        return v
    top = 6 if hi == 7 else hi
    out = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            a, b = lo, top
        elif "-" in base:
            a, b = (value(t) for t in base.split("-"))
        else:
            a = value(base)
            b = max(a, top) if step else a
        out.update(range(a, b + 1, int(step) if step else 1))
    return {0 if v == 7 and hi == 7 else v for v in out}


def matcher(expr):
    f = MACROS.get(expr.lower(), expr).split()
    assert len(f) == 5, expr
    minutes, hours = field_values(f[0], 0, 59), field_values(f[1], 0, 23)
    doms, months = field_values(f[2], 1, 31), field_values(f[3], 1, 12, MONTHS, 1)
    dows = field_values(f[4], 0, 7, DAYS, 0)
    either = f[2] != "*" and f[4] != "*"  # the Vixie rule

    def day_ok(d):
        if d.month not in months:
            return False
        dom, dow = d.day in doms, (d.isoweekday() % 7) in dows
        return dom or dow if either else dom and dow
    return sorted(hours), sorted(minutes), day_ok


def wall_times(expr, start, end):
    """Matching wall-clock minutes (naive datetimes) in [start, end)."""
    hours, minutes, day_ok = matcher(expr)
    d = start.date()
    while d <= end.date():
        if day_ok(d):
            for h in hours:
                for m in minutes:
                    w = dt.datetime(d.year, d.month, d.day, h, m)
                    if start <= w < end:
                        yield w
        d += dt.timedelta(days=1)


def wall_times_croniter(expr, start, end):
    """The same list from croniter, as a cross-check."""
    it = croniter(expr, start - dt.timedelta(minutes=1))
    while True:
        n = it.get_next(dt.datetime)
        if n >= end:
            return
        yield n


def gap_end(before, after, zone):
    """The first instant in (before, after] whose UTC offset differs from before's."""
    old = before.astimezone(zone).utcoffset()
    lo, hi = int(before.timestamp()), int(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == old:
            lo = mid
        else:
            hi = mid
    return dt.datetime.fromtimestamp(hi, UTC)


def instants(wall, zone, gap, repeat):
    """The instants at which one matching wall time fires."""
    # PEP 495: fold=0 reads the wall time with the offset in force before the
    # transition, fold=1 with the offset after it.
    u0 = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    u1 = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if u0 == u1:
        return [u0]
    if u0.astimezone(zone).replace(tzinfo=None) == wall:
        # Repeated: u0 is the first occurrence, u1 the second.
        return {"first": [u0], "last": [u1], "both": [u0, u1]}[repeat]
    # Skipped: u1 (earlier) lies before the gap, u0 (later) after it.
    if gap == "skip":
        return []
    return [gap_end(u1, u0, zone)]


def fires(expr, zone_name, gap, repeat, start, end=None, count=None):
    if end is None:  # widen the window until it holds `count` fires
        span = dt.timedelta(days=2)
        while True:
            out = fires(expr, zone_name, gap, repeat, start, end=start + span)
            if len(out) >= count:
                return out[:count]
            assert span < dt.timedelta(days=366 * 20), (expr, zone_name)
            span *= 2
    zone = zoneinfo.ZoneInfo(zone_name)
    stop = end
    margin = dt.timedelta(days=2)
    lo = (start - margin).astimezone(zone).replace(tzinfo=None)
    hi = (stop + margin).astimezone(zone).replace(tzinfo=None)
    walls = list(wall_times(expr, lo, hi))
    if CROSS_CHECK:
        assert walls == list(wall_times_croniter(expr, lo, hi)), f"croniter disagrees on {expr!r}"
    found = set()
    for wall in walls:
        found.update(instants(wall, zone, gap, repeat))
    out = sorted(u for u in found if start <= u < stop)
    return [f"{iso_utc(u)} {u.astimezone(zone).isoformat()}" for u in out]


def local_day(zone_name, day):
    """[start, end) in UTC of the wall-clock day `day` (YYYY-MM-DD) in the zone."""
    zone = zoneinfo.ZoneInfo(zone_name)
    d = dt.date.fromisoformat(day)
    start = dt.datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)
    n = d + dt.timedelta(days=1)
    end = dt.datetime(n.year, n.month, n.day, tzinfo=zone).astimezone(UTC)
    assert end - start != dt.timedelta(days=1), f"{day} is not a DST-change day in {zone_name}"
    return start, end


TWO_YEARS = (utc("2026-01-01T00:00:00"), utc("2028-01-01T00:00:00"))

# (expression, zone): every fire in 2026 and 2027, default policy.
FULL = [
    ("30 2 * * *", "UTC"),
    ("30 2 * * *", "America/New_York"),
    ("30 2 * * *", "Europe/Berlin"),
    ("30 2 * * *", "Australia/Lord_Howe"),
    ("0 0 1 * *", "Asia/Kolkata"),
    ("0 0 1 * *", "America/New_York"),
    ("0 9 * * MON-FRI", "Europe/Berlin"),
    ("@weekly", "UTC"),
    ("@weekly", "Australia/Lord_Howe"),
    ("15 1 * * SUN", "America/New_York"),
    ("15 1 * * SUN", "Europe/Berlin"),
    ("0 0 13 * FRI", "UTC"),
]

# (expression, zone, count): the first fires from 2026-01-01T00:00Z.
FIRST = [
    ("0 0 29 2 *", "America/New_York", 4),
    ("0 0 29 2 *", "Asia/Kolkata", 3),
    ("0 * * * *", "Europe/Berlin", 48),
    ("*/15 1-3 * * *", "Asia/Kolkata", 24),
]

# Wall-clock days with an offset change, and what to fire on them.
DST_DAYS = {
    "America/New_York": ["2026-03-08", "2026-11-01", "2027-03-14", "2027-11-07"],
    "Europe/Berlin": ["2026-03-29", "2026-10-25", "2027-03-28", "2027-10-31"],
    "Australia/Lord_Howe": ["2026-04-05", "2026-10-04"],
}
DST_EXPRS = ["0 * * * *", "*/15 1-3 * * *", "30 2 * * *", "15 1 * * SUN"]


def main():
    out = [
        "# Golden fire times for tests/dsl/fire_times_test.cc.",
        "# Generated by gen_fire_times.py (croniter + zoneinfo); do not edit by hand.",
        "# case <expression> | <zone> | <on_dst_gap> | <on_dst_repeat> | <from, inclusive> | <to, exclusive> or <count>",
        "# then one line per fire: <instant in UTC> <wall time in the zone>",
    ]

    def case(expr, zone, gap, repeat, start, end=None, count=None):
        last = iso_utc(end) if end is not None else str(count)
        out.append(f"case {expr} | {zone} | {gap} | {repeat} | {iso_utc(start)} | {last}")
        out.extend(fires(expr, zone, gap, repeat, start, end=end, count=count))

    for expr, zone in FULL:
        case(expr, zone, "shift", "first", *TWO_YEARS)
    for expr, zone, count in FIRST:
        case(expr, zone, "shift", "first", TWO_YEARS[0], count=count)
    for zone, days in DST_DAYS.items():
        for day in days:
            start, end = local_day(zone, day)
            for expr in DST_EXPRS:
                for gap, repeat in POLICIES:
                    case(expr, zone, gap, repeat, start, end)

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fire_times.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {path}: {sum(1 for l in out if l.startswith('case '))} cases, {len(out)} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
