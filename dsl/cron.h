#pragma once
// Cron expressions: 5 fields (minute hour day-of-month month day-of-week)
// with ranges, steps, lists, month and day names, and the macros @hourly,
// @daily (@midnight), @weekly, @monthly, @yearly (@annually). Pure
// calendar logic; zone-aware firing lives in dsl/fire_times.h.
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::dsl {

// What to do with a wall-clock time that does not exist (spring forward) or
// happens twice (fall back). Defaults behave like cronie.
enum class DstGap { Shift, Skip };
enum class DstRepeat { First, Last, Both };

class CronExpr {
 public:
  // Parses `text`. On failure returns false, sets `error` to one line that
  // says what is wrong (e.g. "minute 61 is out of range 0-59",
  // "@reboot is not supported: schedules fire at times", "cron expression
  // '0 0 31 2 *' can never fire: ...") and `error_offset` to the byte offset
  // in `text` of the offending token (0 for the whole expression; the end of
  // the text when fields are missing). `out` is untouched on failure.
  static bool parse(std::string_view text, CronExpr& out, std::string& error, size_t& error_offset);

  // Whether the civil (wall-clock) minute matches. month 1-12, day 1-31,
  // weekday 0-6 with 0 = Sunday. When both day-of-month and day-of-week are
  // restricted either may match (the Vixie rule).
  bool matches(int month, int day, int weekday, int hour, int minute) const;
  // The day part of matches(): month, day-of-month and day-of-week only.
  bool matches_day(int month, int day, int weekday) const;

  const std::string& text() const { return text_; }

  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;      // bit 1..31
  std::bitset<13> months;    // bit 1..12
  std::bitset<7> weekdays;   // bit 0..6, Sunday = 0 (7 in input also means Sunday)
  // A field is restricted when it is written as anything but a lone `*`.
  bool days_restricted = false;
  bool weekdays_restricted = false;

 private:
  std::string text_;
};

// Whether `name` is an IANA time zone known to this machine's tz database
// (case-sensitive, as in "Europe/Berlin"; "UTC" always is). Paths, the
// posix/ and right/ trees and "localtime" are not zone names.
bool is_known_timezone(const std::string& name);

}  // namespace sluice::dsl
