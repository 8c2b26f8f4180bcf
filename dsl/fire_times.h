#pragma once
// When a cron schedule fires, in a time zone, under a daylight-saving policy.
// Pure computation: no clock, no I/O; the server asks for the next fire after
// the last one it ran.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dsl/cron.h"

namespace sluice::dsl {

// One firing of a schedule. `utc` is also the fire's identity: two fires of
// one schedule never share an instant (matching wall times that land on the
// same instant fire once), so a server that records the last `utc` it ran
// and resumes with next_after(it) runs each fire exactly once across restarts.
struct Fire {
  int64_t utc = 0;        // seconds since the Unix epoch
  std::string local_iso;  // wall time in the zone, "2026-03-08T03:00:00-04:00"
  std::string utc_iso;    // "2026-03-08T07:00:00Z"
};

// The fire times of one schedule. Cheap to copy; safe to use from several
// threads at once (it is immutable).
//
// A matching wall time that does not exist (spring forward) fires at the
// first instant after the gap with DstGap::Shift, once per gap however many
// of its minutes match, and not at all with DstGap::Skip. A matching wall
// time that happens twice (fall back) fires at its first occurrence, its
// second, or both, per DstRepeat.
class FireTimes {
 public:
  // Returns false and sets `error` to one line when `timezone` is not a zone
  // is_known_timezone() accepts.
  static bool make(const CronExpr& expr, const std::string& timezone, DstGap gap, DstRepeat repeat,
                   FireTimes& out, std::string& error);

  // The first fire strictly after `utc_seconds`. Looks at most ten years
  // ahead (enough for Feb 29 across 2100), so it always terminates; nullopt
  // only when nothing fires within that horizon or `utc_seconds` is outside
  // the years 1-9999.
  std::optional<Fire> next_after(int64_t utc_seconds) const;

  const std::string& timezone() const { return timezone_; }

 private:
  struct Zone;  // the loaded cctz zone, kept out of this header
  CronExpr expr_;
  std::string timezone_;
  DstGap gap_ = DstGap::Shift;
  DstRepeat repeat_ = DstRepeat::First;
  std::shared_ptr<const Zone> zone_;
};

}  // namespace sluice::dsl
