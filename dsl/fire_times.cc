#include "dsl/fire_times.h"

#include <algorithm>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

namespace sluice::dsl {

struct FireTimes::Zone {
  cctz::time_zone tz;
};

namespace {

using TimePoint = cctz::time_point<cctz::seconds>;

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
constexpr int64_t kMinSupported = -62'135'596'800;
constexpr int64_t kMaxSupported = 253'402'300'799;
// Ten years: the longest wait of a valid expression is Feb 29 from 2096 to
// 2104 (2100 is not a leap year).
constexpr int64_t kHorizon = int64_t{10} * 366 * 86'400;

const cctz::civil_second kEpoch(1970, 1, 1, 0, 0, 0);

TimePoint to_tp(int64_t s) { return TimePoint(cctz::seconds(s)); }
int64_t from_tp(TimePoint tp) { return tp.time_since_epoch().count(); }

// Sunday = 0, as in cron.
int cron_weekday(const cctz::civil_day& d) {
  switch (cctz::get_weekday(d)) {
    case cctz::weekday::sunday: return 0;
    case cctz::weekday::monday: return 1;
    case cctz::weekday::tuesday: return 2;
    case cctz::weekday::wednesday: return 3;
    case cctz::weekday::thursday: return 4;
    case cctz::weekday::friday: return 5;
    case cctz::weekday::saturday: return 6;
  }
  return 0;
}

template <size_t N>
int next_set(const std::bitset<N>& bits, int from) {
  for (int i = from; i < static_cast<int>(N); ++i) {
    if (bits[static_cast<size_t>(i)]) return i;
  }
  return -1;
}

// The first wall-clock minute at or after `from` and before `limit` that the
// expression matches. Skips whole months, days and hours that cannot match.
std::optional<cctz::civil_minute> next_match(const CronExpr& e, const cctz::civil_second& from,
                                             const cctz::civil_second& limit) {
  cctz::civil_minute m(from);
  if (cctz::civil_second(m) < from) ++m;
  while (cctz::civil_second(m) < limit) {
    if (!e.months[static_cast<size_t>(m.month())]) {
      m = cctz::civil_minute(cctz::civil_month(m) + 1);
      continue;
    }
    const cctz::civil_day d(m);
    if (!e.matches_day(m.month(), m.day(), cron_weekday(d))) {
      m = cctz::civil_minute(d + 1);
      continue;
    }
    const int h = next_set(e.hours, m.hour());
    if (h < 0) {
      m = cctz::civil_minute(d + 1);
      continue;
    }
    if (h != m.hour()) m = cctz::civil_minute(m.year(), m.month(), m.day(), h, 0);
    const int mi = next_set(e.minutes, m.minute());
    if (mi < 0) {
      m = cctz::civil_minute(cctz::civil_hour(m) + 1);
      continue;
    }
    m = cctz::civil_minute(m.year(), m.month(), m.day(), m.hour(), mi);
    if (cctz::civil_second(m) < limit) return m;
    return std::nullopt;
  }
  return std::nullopt;
}

struct Transition {
  int64_t at;               // first instant under the new offset
  cctz::civil_second from;  // wall time just before `at`, under the old offset
  cctz::civil_second to;    // wall time at `at`
};

// The first UTC-offset change strictly after `s`.
std::optional<Transition> transition_after(const cctz::time_zone& tz, int64_t s) {
  cctz::time_zone::civil_transition ct;
  if (!tz.next_transition(to_tp(s), &ct)) return std::nullopt;
  return Transition{from_tp(tz.lookup(ct.to).trans), ct.from, ct.to};
}

Fire make_fire(const cctz::time_zone& tz, int64_t utc) {
  Fire f;
  f.utc = utc;
  f.local_iso = cctz::format("%Y-%m-%dT%H:%M:%S%Ez", to_tp(utc), tz);
  f.utc_iso = cctz::format("%Y-%m-%dT%H:%M:%SZ", to_tp(utc), cctz::utc_time_zone());
  return f;
}

}  // namespace

bool FireTimes::make(const CronExpr& expr, const std::string& timezone, DstGap gap, DstRepeat repeat,
                     FireTimes& out, std::string& error) {
  auto zone = std::make_shared<Zone>();
  if (!is_known_timezone(timezone) || !cctz::load_time_zone(timezone, &zone->tz)) {
    error = "unknown time zone '" + timezone + "': expected an IANA name such as \"UTC\" or \"Europe/Berlin\"";
    return false;
  }
  out.expr_ = expr;
  out.timezone_ = timezone;
  out.gap_ = gap;
  out.repeat_ = repeat;
  out.zone_ = std::move(zone);
  return true;
}

std::optional<Fire> FireTimes::next_after(int64_t utc_seconds) const {
  if (!zone_ || utc_seconds < kMinSupported || utc_seconds > kMaxSupported) return std::nullopt;
  const cctz::time_zone& tz = zone_->tz;
  const int64_t horizon = utc_seconds + kHorizon;

  // Whether a spring-forward gap holds a matching wall time that fires, under
  // Shift, at the transition instant.
  auto gap_fires = [&](const Transition& tr) {
    return gap_ == DstGap::Shift && tr.to > tr.from && next_match(expr_, tr.from, tr.to).has_value();
  };

  // The time line is cut at offset changes; within a piece the offset is
  // constant, so wall times map to instants by subtraction. Pieces are
  // visited in order, so the first fire found is the earliest.
  int64_t s = utc_seconds + 1;
  if (auto tr = transition_after(tz, s - 1); tr && tr->at == s && gap_fires(*tr)) return make_fire(tz, s);
  while (s < horizon) {
    const int offset = tz.lookup(to_tp(s)).offset;
    const std::optional<Transition> tr = transition_after(tz, s);
    const int64_t end = tr ? std::min(tr->at, horizon) : horizon;

    cctz::civil_second c = kEpoch + (s + offset);
    const cctz::civil_second limit = kEpoch + (end + offset);
    while (auto n = next_match(expr_, c, limit)) {
      const cctz::civil_second wall(*n);
      const int64_t at = (wall - kEpoch) - offset;
      const auto lk = tz.lookup(wall);
      bool take = true;
      if (lk.kind == cctz::time_zone::civil_lookup::REPEATED) {
        // `pre` is the first occurrence, `post` the second.
        if (repeat_ == DstRepeat::First) take = at == from_tp(lk.pre);
        if (repeat_ == DstRepeat::Last) take = at == from_tp(lk.post);
      }
      if (take) return make_fire(tz, at);
      c = wall + 60;
    }

    if (!tr || tr->at >= horizon || tr->at <= s) break;
    if (gap_fires(*tr)) return make_fire(tz, tr->at);
    s = tr->at;
  }
  return std::nullopt;
}

}  // namespace sluice::dsl
