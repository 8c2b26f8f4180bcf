#include "dsl/cron.h"

#include <catch2/catch.hpp>

using sluice::dsl::CronExpr;
using sluice::dsl::is_known_timezone;

namespace {

CronExpr parse_ok(std::string_view text) {
  CronExpr e;
  std::string error;
  size_t offset = 0;
  INFO(text);
  bool ok = CronExpr::parse(text, e, error, offset);
  INFO(error);
  REQUIRE(ok);
  return e;
}

// The message, the expression, and a caret under `error_offset`.
std::string error_of(std::string_view text) {
  CronExpr e;
  std::string error;
  size_t offset = 12345;
  INFO(text);
  REQUIRE_FALSE(CronExpr::parse(text, e, error, offset));
  REQUIRE(offset <= text.size());
  return error + "\n" + std::string(text) + "\n" + std::string(offset, ' ') + "^";
}

// The set bits of a field, as "0,15,30,45".
template <size_t N>
std::string values(const std::bitset<N>& bits) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (!bits[i]) continue;
    if (!out.empty()) out += ",";
    out += std::to_string(i);
  }
  return out;
}

// The five fields of a parsed expression, restricted day fields marked "!".
std::string fields(const CronExpr& e) {
  return values(e.minutes) + " | " + values(e.hours) + " | " + values(e.days) + (e.days_restricted ? "!" : "") +
         " | " + values(e.months) + " | " + values(e.weekdays) + (e.weekdays_restricted ? "!" : "");
}

const std::string kAllMinutes = [] {
  std::string s;
  for (int i = 0; i < 60; ++i) s += (i ? "," : "") + std::to_string(i);
  return s;
}();
const std::string kAllHours = "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23";
const std::string kAllDays =
    "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31";
const std::string kAllMonths = "1,2,3,4,5,6,7,8,9,10,11,12";
const std::string kAllWeekdays = "0,1,2,3,4,5,6";

}  // namespace

TEST_CASE("cron: every syntax form sets the right values") {
  CHECK(fields(parse_ok("* * * * *")) ==
        kAllMinutes + " | " + kAllHours + " | " + kAllDays + " | " + kAllMonths + " | " + kAllWeekdays);
  CHECK(fields(parse_ok("5 4 3 2 1")) == "5 | 4 | 3! | 2 | 1!");
  // Ranges, lists, steps over `*`, over a range and from a value.
  CHECK(values(parse_ok("1-5 * * * *").minutes) == "1,2,3,4,5");
  CHECK(values(parse_ok("1,5,59 * * * *").minutes) == "1,5,59");
  CHECK(values(parse_ok("*/15 * * * *").minutes) == "0,15,30,45");
  CHECK(values(parse_ok("10-30/10 * * * *").minutes) == "10,20,30");
  CHECK(values(parse_ok("10-31/10 * * * *").minutes) == "10,20,30");
  CHECK(values(parse_ok("50/3 * * * *").minutes) == "50,53,56,59");
  CHECK(values(parse_ok("0 */6 * * *").hours) == "0,6,12,18");
  CHECK(values(parse_ok("0 9-17/4,23 * * *").hours) == "9,13,17,23");
  CHECK(values(parse_ok("0 0 */10 * *").days) == "1,11,21,31");
  CHECK(values(parse_ok("0 0 1 */3 *").months) == "1,4,7,10");
  CHECK(values(parse_ok("0 0 * * */2").weekdays) == "0,2,4,6");
  CHECK(values(parse_ok("0 0 * * 1-5/2").weekdays) == "1,3,5");
  CHECK(values(parse_ok("0 0 * * 3/2").weekdays) == "3,5");
  CHECK(values(parse_ok("07 0 * * *").minutes) == "7");
  // A step larger than what is left of the range keeps only the start.
  CHECK(values(parse_ok("58/5 * * * *").minutes) == "58");
  // Overlapping list items are fine.
  CHECK(values(parse_ok("0-10/5,5-6 * * * *").minutes) == "0,5,6,10");
}

TEST_CASE("cron: month and day names are case-insensitive and 7 is Sunday") {
  CHECK(values(parse_ok("0 0 1 JAN,feb,Mar,aPr,MAY,jun,JUL,aug,SEP,oct,NOV,dec *").months) == kAllMonths);
  CHECK(values(parse_ok("0 0 1 JAN-MAR *").months) == "1,2,3");
  CHECK(values(parse_ok("0 0 1 jan-dec/4 *").months) == "1,5,9");
  CHECK(values(parse_ok("0 0 1 MAR/3 *").months) == "3,6,9,12");
  CHECK(values(parse_ok("0 0 1 2-APR *").months) == "2,3,4");
  CHECK(values(parse_ok("0 0 * * SUN,mon,Tue,wED,THU,fri,SAT").weekdays) == kAllWeekdays);
  CHECK(values(parse_ok("0 9 * * MON-FRI").weekdays) == "1,2,3,4,5");
  CHECK(values(parse_ok("0 0 * * 7").weekdays) == "0");
  CHECK(values(parse_ok("0 0 * * 5-7").weekdays) == "0,5,6");
  CHECK(values(parse_ok("0 0 * * FRI-7").weekdays) == "0,5,6");
  CHECK(values(parse_ok("0 0 * * 0-7").weekdays) == kAllWeekdays);
  CHECK(values(parse_ok("0 0 * * 0,7").weekdays) == "0");
}

TEST_CASE("cron: macros expand to their five fields") {
  CHECK(fields(parse_ok("@hourly")) == fields(parse_ok("0 * * * *")));
  CHECK(fields(parse_ok("@daily")) == fields(parse_ok("0 0 * * *")));
  CHECK(fields(parse_ok("@midnight")) == fields(parse_ok("0 0 * * *")));
  CHECK(fields(parse_ok("@weekly")) == fields(parse_ok("0 0 * * 0")));
  CHECK(fields(parse_ok("@monthly")) == fields(parse_ok("0 0 1 * *")));
  CHECK(fields(parse_ok("@yearly")) == fields(parse_ok("0 0 1 1 *")));
  CHECK(fields(parse_ok("@annually")) == fields(parse_ok("0 0 1 1 *")));
  CHECK(fields(parse_ok("@Daily")) == fields(parse_ok("0 0 * * *")));
  CHECK(fields(parse_ok("  @weekly\t")) == fields(parse_ok("0 0 * * 0")));
  CHECK(parse_ok("@weekly").text() == "@weekly");
}

TEST_CASE("cron: fields may be separated by any run of blanks") {
  CHECK(fields(parse_ok("  0\t3   *  *\t* ")) == fields(parse_ok("0 3 * * *")));
  CHECK(parse_ok("0 3 * * *").text() == "0 3 * * *");
}

TEST_CASE("cron: errors name the field, the token and the allowed range") {
  CHECK(error_of("") ==
        "cron expression is empty: expected 5 fields (minute hour day-of-month month day-of-week) or a macro such "
        "as @daily\n"
        "\n"
        "^");
  CHECK(error_of("   ") ==
        "cron expression is empty: expected 5 fields (minute hour day-of-month month day-of-week) or a macro such "
        "as @daily\n"
        "   \n"
        "^");
  CHECK(error_of("0 3 * *") ==
        "cron expression has 4 fields, expected 5: minute hour day-of-month month day-of-week\n"
        "0 3 * *\n"
        "       ^");
  CHECK(error_of("5") ==
        "cron expression has 1 field, expected 5: minute hour day-of-month month day-of-week\n"
        "5\n"
        " ^");
  CHECK(error_of("0 3 * * * 2026") ==
        "cron expression has 6 fields, expected 5: minute hour day-of-month month day-of-week\n"
        "0 3 * * * 2026\n"
        "          ^");

  CHECK(error_of("61 * * * *") ==
        "minute 61 is out of range 0-59\n"
        "61 * * * *\n"
        "^");
  CHECK(error_of("0 24 * * *") ==
        "hour 24 is out of range 0-23\n"
        "0 24 * * *\n"
        "  ^");
  CHECK(error_of("0 0 0 * *") ==
        "day-of-month 0 is out of range 1-31\n"
        "0 0 0 * *\n"
        "    ^");
  CHECK(error_of("0 0 32 * *") ==
        "day-of-month 32 is out of range 1-31\n"
        "0 0 32 * *\n"
        "    ^");
  CHECK(error_of("0 0 1 13 *") ==
        "month 13 is out of range 1-12\n"
        "0 0 1 13 *\n"
        "      ^");
  CHECK(error_of("0 0 1 0 *") ==
        "month 0 is out of range 1-12\n"
        "0 0 1 0 *\n"
        "      ^");
  CHECK(error_of("0 0 * * 8") ==
        "day-of-week 8 is out of range 0-7\n"
        "0 0 * * 8\n"
        "        ^");
  CHECK(error_of("1,2,99 * * * *") ==
        "minute 99 is out of range 0-59\n"
        "1,2,99 * * * *\n"
        "    ^");
  CHECK(error_of("0 1-25 * * *") ==
        "hour 25 is out of range 0-23\n"
        "0 1-25 * * *\n"
        "    ^");
  CHECK(error_of("99999999999 * * * *") ==
        "minute 99999999999 is out of range 0-59\n"
        "99999999999 * * * *\n"
        "^");

  CHECK(error_of("x * * * *") ==
        "minute 'x' is not a number: expected 0-59\n"
        "x * * * *\n"
        "^");
  CHECK(error_of("0 MON * * *") ==
        "hour 'MON' is not a number: expected 0-23\n"
        "0 MON * * *\n"
        "  ^");
  CHECK(error_of("0 -1 * * *") ==
        "hour '-1' is malformed: expected a value, a-b, */n, a-b/n or a/n within 0-23\n"
        "0 -1 * * *\n"
        "  ^");
  CHECK(error_of("0 0 L * *") ==
        "day-of-month 'L' is not a number: expected 1-31\n"
        "0 0 L * *\n"
        "    ^");
  CHECK(error_of("0 0 1 JANUARY *") ==
        "month 'JANUARY' is not a number or month name: expected 1-12 or JAN-DEC\n"
        "0 0 1 JANUARY *\n"
        "      ^");
  CHECK(error_of("0 0 * * MON-FUN") ==
        "day-of-week 'FUN' is not a number or day name: expected 0-7 or SUN-SAT\n"
        "0 0 * * MON-FUN\n"
        "            ^");
  CHECK(error_of("0 0 ? * MON") ==
        "day-of-month '?' is not a number: expected 1-31\n"
        "0 0 ? * MON\n"
        "    ^");

  CHECK(error_of("1-2-3 * * * *") ==
        "minute '1-2-3' is malformed: expected a value, a-b, */n, a-b/n or a/n within 0-59\n"
        "1-2-3 * * * *\n"
        "^");
  CHECK(error_of("0 1/2/3 * * *") ==
        "hour '1/2/3' is malformed: expected a value, a-b, */n, a-b/n or a/n within 0-23\n"
        "0 1/2/3 * * *\n"
        "  ^");
  CHECK(error_of("*/ * * * *") ==
        "minute '*/' is malformed: expected a value, a-b, */n, a-b/n or a/n within 0-59\n"
        "*/ * * * *\n"
        "^");
  CHECK(error_of("/5 * * * *") ==
        "minute '/5' is malformed: expected a value, a-b, */n, a-b/n or a/n within 0-59\n"
        "/5 * * * *\n"
        "^");
  CHECK(error_of("0 0 1- * *") ==
        "day-of-month '1-' is malformed: expected a value, a-b, */n, a-b/n or a/n within 1-31\n"
        "0 0 1- * *\n"
        "    ^");
  CHECK(error_of("*-5 * * * *") ==
        "minute '*-5' is malformed: expected a value, a-b, */n, a-b/n or a/n within 0-59\n"
        "*-5 * * * *\n"
        "^");

  CHECK(error_of("*/0 * * * *") ==
        "minute step 0 is out of range 1-59\n"
        "*/0 * * * *\n"
        "  ^");
  CHECK(error_of("*/60 * * * *") ==
        "minute step 60 is out of range 1-59\n"
        "*/60 * * * *\n"
        "  ^");
  CHECK(error_of("0 */24 * * *") ==
        "hour step 24 is out of range 1-23\n"
        "0 */24 * * *\n"
        "    ^");
  CHECK(error_of("0 0 */31 * *") ==
        "day-of-month step 31 is out of range 1-30\n"
        "0 0 */31 * *\n"
        "      ^");
  CHECK(error_of("0 0 1 */12 *") ==
        "month step 12 is out of range 1-11\n"
        "0 0 1 */12 *\n"
        "        ^");
  CHECK(error_of("0 0 * * */7") ==
        "day-of-week step 7 is out of range 1-6\n"
        "0 0 * * */7\n"
        "          ^");
  CHECK(error_of("*/x * * * *") ==
        "minute step 'x' is not a number: expected 1-59\n"
        "*/x * * * *\n"
        "  ^");

  CHECK(error_of("0 22-2 * * *") ==
        "hour range 22-2 is backwards: expected low-high within 0-23\n"
        "0 22-2 * * *\n"
        "  ^");
  CHECK(error_of("0 0 * * FRI-MON") ==
        "day-of-week range FRI-MON is backwards: expected low-high within 0-7\n"
        "0 0 * * FRI-MON\n"
        "        ^");
  CHECK(error_of("1,,2 * * * *") ==
        "minute list '1,,2' has an empty item: expected values within 0-59 separated by commas\n"
        "1,,2 * * * *\n"
        "  ^");
  CHECK(error_of("0 0 1, * *") ==
        "day-of-month list '1,' has an empty item: expected values within 1-31 separated by commas\n"
        "0 0 1, * *\n"
        "      ^");

  CHECK(error_of("@reboot") ==
        "@reboot is not supported: schedules fire at times\n"
        "@reboot\n"
        "^");
  CHECK(error_of("  @REBOOT") ==
        "@reboot is not supported: schedules fire at times\n"
        "  @REBOOT\n"
        "  ^");
  CHECK(error_of("@fortnightly") ==
        "unknown cron macro '@fortnightly': expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or "
        "@annually\n"
        "@fortnightly\n"
        "^");
  CHECK(error_of("@daily 3") ==
        "cron macro '@daily' stands alone: unexpected '3' after it\n"
        "@daily 3\n"
        "       ^");
}

TEST_CASE("cron: an expression that can never fire is an error") {
  CHECK(error_of("0 0 31 2 *") ==
        "cron expression '0 0 31 2 *' can never fire: its months have at most 29 days\n"
        "0 0 31 2 *\n"
        "^");
  CHECK(error_of("0 0 30 2 *") ==
        "cron expression '0 0 30 2 *' can never fire: its months have at most 29 days\n"
        "0 0 30 2 *\n"
        "^");
  CHECK(error_of(" 0 0 31 4,6,9,11 * ") ==
        "cron expression '0 0 31 4,6,9,11 *' can never fire: its months have at most 30 days\n"
        " 0 0 31 4,6,9,11 * \n"
        "^");
  CHECK(error_of("0 0 30-31 FEB *") ==
        "cron expression '0 0 30-31 FEB *' can never fire: its months have at most 29 days\n"
        "0 0 30-31 FEB *\n"
        "^");
  // Feb 29 happens in leap years; one month with the day is enough; with
  // day-of-week restricted the Vixie rule makes any weekday a match.
  parse_ok("0 0 29 2 *");
  parse_ok("0 0 31 2,3 *");
  parse_ok("0 0 30,31 4 *");
  parse_ok("0 0 31 2 MON");
}

TEST_CASE("cron: with both day fields restricted either may match (Vixie rule)") {
  // matches(month, day, weekday, hour, minute); weekday 0 = Sunday.
  const CronExpr both = parse_ok("0 0 13 * FRI");
  CHECK(both.matches(2, 13, 5, 0, 0));   // the 13th and a Friday
  CHECK(both.matches(1, 13, 2, 0, 0));   // the 13th, a Tuesday
  CHECK(both.matches(1, 16, 5, 0, 0));   // a Friday, the 16th
  CHECK_FALSE(both.matches(1, 14, 3, 0, 0));
  CHECK_FALSE(both.matches(1, 13, 2, 0, 1));  // the minute still has to match

  const CronExpr dom_only = parse_ok("0 0 13 * *");
  CHECK(dom_only.matches(1, 13, 2, 0, 0));
  CHECK_FALSE(dom_only.matches(1, 16, 5, 0, 0));

  const CronExpr dow_only = parse_ok("0 0 * * FRI");
  CHECK(dow_only.matches(1, 16, 5, 0, 0));
  CHECK_FALSE(dow_only.matches(1, 13, 2, 0, 0));

  // Anything but a lone `*` restricts, even when it covers every value.
  const CronExpr stepped = parse_ok("0 0 */2 * MON");
  CHECK(stepped.days_restricted);
  CHECK(stepped.weekdays_restricted);
  CHECK(stepped.matches(1, 3, 6, 0, 0));   // odd day, Saturday
  CHECK(stepped.matches(1, 4, 1, 0, 0));   // even day, Monday
  CHECK_FALSE(stepped.matches(1, 4, 0, 0, 0));
  const CronExpr full_range = parse_ok("0 0 1-31 * MON");
  CHECK(full_range.matches(1, 6, 2, 0, 0));

  // The month always has to match.
  CHECK_FALSE(parse_ok("0 0 13 2 FRI").matches(1, 13, 5, 0, 0));
}

TEST_CASE("cron: matches() rejects values outside the calendar") {
  const CronExpr e = parse_ok("* * * * *");
  CHECK(e.matches(12, 31, 6, 23, 59));
  CHECK_FALSE(e.matches(0, 1, 0, 0, 0));
  CHECK_FALSE(e.matches(13, 1, 0, 0, 0));
  CHECK_FALSE(e.matches(1, 0, 0, 0, 0));
  CHECK_FALSE(e.matches(1, 32, 0, 0, 0));
  CHECK_FALSE(e.matches(1, 1, 7, 0, 0));
  CHECK_FALSE(e.matches(1, 1, -1, 0, 0));
  CHECK_FALSE(e.matches(1, 1, 0, 24, 0));
  CHECK_FALSE(e.matches(1, 1, 0, 0, 60));
}

TEST_CASE("cron: time zones are IANA names from the tz database") {
  CHECK(is_known_timezone("UTC"));
  CHECK(is_known_timezone("Europe/Berlin"));
  CHECK(is_known_timezone("America/New_York"));
  CHECK(is_known_timezone("America/Argentina/Buenos_Aires"));
  CHECK(is_known_timezone("Australia/Lord_Howe"));
  CHECK(is_known_timezone("Asia/Kolkata"));
  CHECK(is_known_timezone("Etc/GMT+5"));
  CHECK(is_known_timezone("US/Eastern"));  // a link, still a tz database name

  CHECK_FALSE(is_known_timezone(""));
  CHECK_FALSE(is_known_timezone("Europe/Nowhere"));  // cctz would fall back to UTC
  CHECK_FALSE(is_known_timezone("utc"));
  CHECK_FALSE(is_known_timezone("europe/berlin"));
  CHECK_FALSE(is_known_timezone("Europe/"));
  CHECK_FALSE(is_known_timezone("Europe//Berlin"));
  CHECK_FALSE(is_known_timezone("/usr/share/zoneinfo/UTC"));
  CHECK_FALSE(is_known_timezone("../zoneinfo/UTC"));
  CHECK_FALSE(is_known_timezone("Europe/../UTC"));
  CHECK_FALSE(is_known_timezone("file:UTC"));
  CHECK_FALSE(is_known_timezone("libc:UTC"));
  CHECK_FALSE(is_known_timezone("Fixed/UTC+05:00"));
  CHECK_FALSE(is_known_timezone("localtime"));
  CHECK_FALSE(is_known_timezone("posixrules"));
  CHECK_FALSE(is_known_timezone("posix/Europe/Berlin"));
  CHECK_FALSE(is_known_timezone("right/UTC"));
  CHECK_FALSE(is_known_timezone("Factory"));
  CHECK_FALSE(is_known_timezone("zone.tab"));
  CHECK_FALSE(is_known_timezone("leapseconds"));
  CHECK_FALSE(is_known_timezone("Europe/Berlin "));
}
