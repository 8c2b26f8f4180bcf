#include "dsl/fire_times.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include <catch2/catch.hpp>

using sluice::dsl::CronExpr;
using sluice::dsl::DstGap;
using sluice::dsl::DstRepeat;
using sluice::dsl::Fire;
using sluice::dsl::FireTimes;

namespace {

// "2026-03-08T07:00:00Z" to seconds since the epoch.
int64_t utc(const std::string& iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  REQUIRE(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &s, &z) == 7);
  REQUIRE(z == 'Z');
  namespace c = std::chrono;
  const c::sys_days date{c::year{y} / c::month{static_cast<unsigned>(mo)} / c::day{static_cast<unsigned>(d)}};
  return (date.time_since_epoch() + c::hours{h} + c::minutes{mi} + c::seconds{s}) / c::seconds{1};
}

FireTimes schedule(const std::string& expr, const std::string& zone, DstGap gap = DstGap::Shift,
                   DstRepeat repeat = DstRepeat::First) {
  CronExpr e;
  std::string error;
  size_t offset = 0;
  INFO(expr);
  REQUIRE(CronExpr::parse(expr, e, error, offset));
  FireTimes f;
  REQUIRE(FireTimes::make(e, zone, gap, repeat, f, error));
  return f;
}

// Fires in [from, to) as "<utc> <local>" lines, at most `limit`.
std::vector<std::string> fires(const FireTimes& f, int64_t from, int64_t to, size_t limit = 100000) {
  std::vector<std::string> out;
  int64_t t = from - 1;
  while (out.size() < limit) {
    std::optional<Fire> next = f.next_after(t);
    if (!next || next->utc >= to) break;
    out.push_back(next->utc_iso + " " + next->local_iso);
    t = next->utc;
  }
  return out;
}

// The fires on one wall-clock day, given as its [start, end) in UTC.
std::vector<std::string> day(const std::string& expr, const std::string& zone, DstGap gap, DstRepeat repeat,
                             const std::string& from, const std::string& to) {
  return fires(schedule(expr, zone, gap, repeat), utc(from), utc(to));
}

using Lines = std::vector<std::string>;

std::string trim(std::string s) {
  const size_t b = s.find_first_not_of(' ');
  const size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> split_bars(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '|') {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("fire_times: matches the golden table computed with croniter and zoneinfo") {
  const std::string path = std::string(SLUICE_TEST_DATA) + "/dsl/golden/fire_times.txt";
  std::ifstream in(path);
  REQUIRE(in.good());

  struct Case {
    std::string header;
    Lines expected;
  };
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("case ", 0) == 0) {
      cases.push_back({line.substr(5), {}});
    } else {
      REQUIRE(!cases.empty());
      cases.back().expected.push_back(line);
    }
  }
  REQUIRE(cases.size() >= 200);

  size_t compared = 0;
  for (const Case& c : cases) {
    INFO("case " << c.header);
    const std::vector<std::string> f = split_bars(c.header);
    REQUIRE(f.size() == 6);
    REQUIRE((f[2] == "shift" || f[2] == "skip"));
    REQUIRE((f[3] == "first" || f[3] == "last" || f[3] == "both"));
    const DstGap gap = f[2] == "shift" ? DstGap::Shift : DstGap::Skip;
    const DstRepeat repeat = f[3] == "first" ? DstRepeat::First : f[3] == "last" ? DstRepeat::Last : DstRepeat::Both;
    const FireTimes ft = schedule(f[0], f[1], gap, repeat);
    const bool counted = f[5].find('T') == std::string::npos;
    const Lines actual = counted ? fires(ft, utc(f[4]), INT64_MAX, std::stoul(f[5]))
                                 : fires(ft, utc(f[4]), utc(f[5]));
    for (size_t i = 0; i < std::min(actual.size(), c.expected.size()); ++i) {
      if (actual[i] != c.expected[i]) {
        INFO("fire #" << i);
        CHECK(actual[i] == c.expected[i]);
        break;
      }
      ++compared;
    }
    CHECK(actual.size() == c.expected.size());
  }
  CHECK(compared >= 6000);
}

TEST_CASE("fire_times: a wall time in the spring-forward gap shifts or is skipped") {
  // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00Z.
  CHECK(day("30 2 * * *", "America/New_York", DstGap::Shift, DstRepeat::First, "2026-03-08T05:00:00Z",
            "2026-03-10T04:00:00Z") == Lines{
                                           "2026-03-08T07:00:00Z 2026-03-08T03:00:00-04:00",
                                           "2026-03-09T06:30:00Z 2026-03-09T02:30:00-04:00",
                                       });
  CHECK(day("30 2 * * *", "America/New_York", DstGap::Skip, DstRepeat::First, "2026-03-08T05:00:00Z",
            "2026-03-10T04:00:00Z") == Lines{
                                           "2026-03-09T06:30:00Z 2026-03-09T02:30:00-04:00",
                                       });
  // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z.
  CHECK(day("30 2 * * *", "Europe/Berlin", DstGap::Shift, DstRepeat::Last, "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z") == Lines{"2026-03-29T01:00:00Z 2026-03-29T03:00:00+02:00"});
  CHECK(day("30 2 * * *", "Europe/Berlin", DstGap::Skip, DstRepeat::Both, "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z")
            .empty());
}

TEST_CASE("fire_times: several matching minutes in one gap fire once") {
  CHECK(day("*/15 2 * * *", "America/New_York", DstGap::Shift, DstRepeat::First, "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z") == Lines{"2026-03-08T07:00:00Z 2026-03-08T03:00:00-04:00"});
  // The shifted fire and the regular 03:00 fire are one instant, so one fire.
  CHECK(day("0 * * * *", "Europe/Berlin", DstGap::Shift, DstRepeat::First, "2026-03-28T23:00:00Z",
            "2026-03-29T03:00:00Z") == Lines{
                                           "2026-03-28T23:00:00Z 2026-03-29T00:00:00+01:00",
                                           "2026-03-29T00:00:00Z 2026-03-29T01:00:00+01:00",
                                           "2026-03-29T01:00:00Z 2026-03-29T03:00:00+02:00",
                                           "2026-03-29T02:00:00Z 2026-03-29T04:00:00+02:00",
                                       });
  CHECK(day("0 * * * *", "Europe/Berlin", DstGap::Skip, DstRepeat::First, "2026-03-28T23:00:00Z",
            "2026-03-29T03:00:00Z") == Lines{
                                           "2026-03-28T23:00:00Z 2026-03-29T00:00:00+01:00",
                                           "2026-03-29T00:00:00Z 2026-03-29T01:00:00+01:00",
                                           "2026-03-29T01:00:00Z 2026-03-29T03:00:00+02:00",
                                           "2026-03-29T02:00:00Z 2026-03-29T04:00:00+02:00",
                                       });
}

TEST_CASE("fire_times: a wall time in the fall-back overlap fires first, last or both") {
  // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00Z.
  const std::string from = "2026-11-01T04:00:00Z", to = "2026-11-02T05:00:00Z";
  CHECK(day("30 1 * * *", "America/New_York", DstGap::Shift, DstRepeat::First, from, to) ==
        Lines{"2026-11-01T05:30:00Z 2026-11-01T01:30:00-04:00"});
  CHECK(day("30 1 * * *", "America/New_York", DstGap::Shift, DstRepeat::Last, from, to) ==
        Lines{"2026-11-01T06:30:00Z 2026-11-01T01:30:00-05:00"});
  CHECK(day("30 1 * * *", "America/New_York", DstGap::Skip, DstRepeat::Both, from, to) ==
        Lines{"2026-11-01T05:30:00Z 2026-11-01T01:30:00-04:00", "2026-11-01T06:30:00Z 2026-11-01T01:30:00-05:00"});
  // Wall times outside the overlap are unaffected by the policy.
  CHECK(day("30 2 * * *", "America/New_York", DstGap::Shift, DstRepeat::Last, from, to) ==
        Lines{"2026-11-01T07:30:00Z 2026-11-01T02:30:00-05:00"});

  // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z.
  const std::string bfrom = "2026-10-24T22:00:00Z", bto = "2026-10-25T23:00:00Z";
  CHECK(day("30 2 * * *", "Europe/Berlin", DstGap::Shift, DstRepeat::First, bfrom, bto) ==
        Lines{"2026-10-25T00:30:00Z 2026-10-25T02:30:00+02:00"});
  CHECK(day("30 2 * * *", "Europe/Berlin", DstGap::Skip, DstRepeat::Last, bfrom, bto) ==
        Lines{"2026-10-25T01:30:00Z 2026-10-25T02:30:00+01:00"});
  CHECK(day("30 2 * * *", "Europe/Berlin", DstGap::Shift, DstRepeat::Both, bfrom, bto) ==
        Lines{"2026-10-25T00:30:00Z 2026-10-25T02:30:00+02:00", "2026-10-25T01:30:00Z 2026-10-25T02:30:00+01:00"});
  // Every minute of the hour: First gives the hour once in CEST, Last once in CET.
  CHECK(day("*/20 2 * * *", "Europe/Berlin", DstGap::Shift, DstRepeat::First, bfrom, bto) ==
        Lines{"2026-10-25T00:00:00Z 2026-10-25T02:00:00+02:00", "2026-10-25T00:20:00Z 2026-10-25T02:20:00+02:00",
              "2026-10-25T00:40:00Z 2026-10-25T02:40:00+02:00"});
  CHECK(day("*/20 2 * * *", "Europe/Berlin", DstGap::Shift, DstRepeat::Last, bfrom, bto) ==
        Lines{"2026-10-25T01:00:00Z 2026-10-25T02:00:00+01:00", "2026-10-25T01:20:00Z 2026-10-25T02:20:00+01:00",
              "2026-10-25T01:40:00Z 2026-10-25T02:40:00+01:00"});
}

TEST_CASE("fire_times: next_after is strictly after and resumes across restarts") {
  const FireTimes f = schedule("0 9 * * MON-FRI", "Europe/Berlin");
  const int64_t start = utc("2026-01-01T00:00:00Z");
  std::optional<Fire> first = f.next_after(start);
  REQUIRE(first);
  CHECK(first->utc_iso == "2026-01-01T08:00:00Z");
  CHECK(f.next_after(first->utc - 1)->utc == first->utc);
  CHECK(f.next_after(first->utc)->utc_iso == "2026-01-02T08:00:00Z");

  // A fresh object resuming from the last fire gives the same sequence, and
  // fires (the exactly-once keys) never repeat, also with DstRepeat::Both.
  const FireTimes both = schedule("*/30 1-2 * * *", "America/New_York", DstGap::Shift, DstRepeat::Both);
  int64_t t = utc("2026-10-31T00:00:00Z");
  std::vector<int64_t> seen;
  for (int i = 0; i < 20; ++i) {
    std::optional<Fire> a = both.next_after(t);
    std::optional<Fire> b = schedule("*/30 1-2 * * *", "America/New_York", DstGap::Shift, DstRepeat::Both).next_after(t);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->utc == b->utc);
    CHECK(a->utc > t);
    if (!seen.empty()) CHECK(a->utc > seen.back());
    seen.push_back(a->utc);
    t = a->utc;
  }
  // 2026-11-01 01:00 and 01:30 happen twice: six fires that day, not four.
  CHECK(fires(both, utc("2026-11-01T04:00:00Z"), utc("2026-11-02T05:00:00Z")).size() == 6);
}

TEST_CASE("fire_times: a shifted fire is found when the search starts at the transition") {
  const FireTimes f = schedule("30 2 * * *", "America/New_York");
  const int64_t jump = utc("2026-03-08T07:00:00Z");
  CHECK(f.next_after(jump - 1)->utc == jump);
  CHECK(f.next_after(jump)->utc_iso == "2026-03-09T06:30:00Z");
  CHECK(f.next_after(jump - 3600)->utc == jump);
}

TEST_CASE("fire_times: zones without daylight saving and with half-hour shifts") {
  CHECK(day("0 0 1 * *", "Asia/Kolkata", DstGap::Skip, DstRepeat::Both, "2026-01-01T00:00:00Z",
            "2026-03-01T00:00:00Z") == Lines{"2026-01-31T18:30:00Z 2026-02-01T00:00:00+05:30",
                                             "2026-02-28T18:30:00Z 2026-03-01T00:00:00+05:30"});
  // Lord Howe, 2026-10-04: 02:00 +10:30 jumps to 02:30 +11:00 at 15:30Z.
  CHECK(day("15 2 * * *", "Australia/Lord_Howe", DstGap::Shift, DstRepeat::First, "2026-10-03T13:30:00Z",
            "2026-10-04T13:00:00Z") == Lines{"2026-10-03T15:30:00Z 2026-10-04T02:30:00+11:00"});
  // Lord Howe, 2026-04-05: 02:00 +11:00 falls back to 01:30 +10:30 at 15:00Z.
  CHECK(day("45 1 * * *", "Australia/Lord_Howe", DstGap::Shift, DstRepeat::Both, "2026-04-04T13:00:00Z",
            "2026-04-05T13:30:00Z") == Lines{"2026-04-04T14:45:00Z 2026-04-05T01:45:00+11:00",
                                             "2026-04-04T15:15:00Z 2026-04-05T01:45:00+10:30"});
}

TEST_CASE("fire_times: the search skips ahead and always ends") {
  // Feb 29 from 2097 waits for 2104: 2100 is not a leap year.
  const FireTimes leap = schedule("0 0 29 2 *", "UTC");
  std::optional<Fire> next = leap.next_after(utc("2096-03-01T00:00:00Z"));
  REQUIRE(next);
  CHECK(next->utc_iso == "2104-02-29T00:00:00Z");

  // A wall time skipped in this year's gap waits for the next year.
  const FireTimes never = schedule("30 2 8 3 *", "America/New_York", DstGap::Skip);
  next = never.next_after(utc("2026-01-01T00:00:00Z"));
  REQUIRE(next);
  CHECK(next->utc_iso == "2027-03-08T07:30:00Z");

  CHECK_FALSE(leap.next_after(utc("9999-12-31T00:00:00Z") + 86400));
  CHECK_FALSE(leap.next_after(INT64_MIN));
  CHECK_FALSE(leap.next_after(INT64_MAX));
  CHECK_FALSE(FireTimes().next_after(0));

  // Every minute for a week, one call per fire.
  const FireTimes minutely = schedule("* * * * *", "Europe/Berlin");
  CHECK(fires(minutely, utc("2026-03-26T00:00:00Z"), utc("2026-04-02T00:00:00Z")).size() == 7 * 1440);
}

TEST_CASE("fire_times: an unknown zone is an error") {
  CronExpr e;
  std::string error;
  size_t offset = 0;
  REQUIRE(CronExpr::parse("@daily", e, error, offset));
  FireTimes f;
  CHECK_FALSE(FireTimes::make(e, "Mars/Olympus_Mons", DstGap::Shift, DstRepeat::First, f, error));
  CHECK(error == "unknown time zone 'Mars/Olympus_Mons': expected an IANA name such as \"UTC\" or \"Europe/Berlin\"");
}
