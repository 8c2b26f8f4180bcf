#pragma once
// The server's notion of "now" for schedules and token expiry. The real one
// reads the system clock; tests set SLUICE_CLOCK_FILE to a file holding the
// time (ISO 8601 UTC or ms since the epoch) and rewrite it to move time, so
// a test covers fire times and restarts without sleeping.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::engine {

class WallClock {
 public:
  virtual ~WallClock() = default;
  virtual int64_t now_ms() const = 0;  // ms since the epoch; thread-safe
  virtual bool is_fake() const { return false; }
};

// $SLUICE_CLOCK_FILE's clock when it is set, else the system clock.
std::unique_ptr<WallClock> make_wall_clock();

// "2026-03-08T07:00:00Z", "2026-03-08T07:00:00.250Z", "2026-03-08T02:00:00-05:00"
// or an integer of ms since the epoch; nullopt when malformed.
std::optional<int64_t> parse_time(std::string_view text);
// "2026-03-08T07:00:00Z" (".250" added when the ms are not 0).
std::string format_utc(int64_t ms);

}  // namespace sluice::engine
