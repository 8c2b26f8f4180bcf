#include <catch2/catch.hpp>

#include "dsl/units.h"

using namespace sluice::dsl;

TEST_CASE("units: durations parse with every unit and in combination") {
  Duration d{};
  std::string err;
  REQUIRE(parse_duration("90s", d, err));
  CHECK(d.count() == 90'000);
  REQUIRE(parse_duration("5m", d, err));
  CHECK(d.count() == 300'000);
  REQUIRE(parse_duration("2h", d, err));
  CHECK(d.count() == 7'200'000);
  REQUIRE(parse_duration("1h30m", d, err));
  CHECK(d.count() == 5'400'000);
  REQUIRE(parse_duration("250ms", d, err));
  CHECK(d.count() == 250);
  REQUIRE(parse_duration("1d2h", d, err));
  CHECK(d.count() == 93'600'000);
}

TEST_CASE("units: malformed durations are rejected with the whole message") {
  Duration d{};
  std::string err;
  for (const char* bad : {"", "10", "5 minutes", "m5", "1.5h", "-3s", "3sec"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad, d, err));
    CHECK(err == std::string("invalid duration '") + bad +
                     "': expected a number and a unit (ms, s, m, h, d), as in \"90s\", \"5m\" or \"1h30m\"");
  }
  CHECK_FALSE(parse_duration("99999999999999999999d", d, err));
  CHECK_FALSE(parse_duration("9999999999999999d", d, err));
  CHECK(err == "duration '9999999999999999d' is too large");
}

TEST_CASE("units: sizes parse binary units") {
  uint64_t b = 0;
  std::string err;
  REQUIRE(parse_size("512M", b, err));
  CHECK(b == 512ull << 20);
  REQUIRE(parse_size("4G", b, err));
  CHECK(b == 4ull << 30);
  REQUIRE(parse_size("1T", b, err));
  CHECK(b == 1ull << 40);
  REQUIRE(parse_size("100", b, err));
  CHECK(b == 100);
  for (const char* bad : {"4GB", "lots", "", "G", "1.5G", "4g"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad, b, err));
    CHECK(err == std::string("invalid size '") + bad +
                     "': expected a number of bytes with an optional unit K, M, G or T, as in \"512M\" or \"4G\"");
  }
}

TEST_CASE("units: canonical renderings round-trip") {
  CHECK(format_duration(Duration(5'400'000)) == "1h30m");
  CHECK(format_duration(Duration(0)) == "0s");
  CHECK(format_duration(Duration(1500)) == "1s500ms");
  CHECK(format_size(4ull << 30) == "4G");
  CHECK(format_size(1536ull << 20) == "1536M");
  CHECK(format_size(1000) == "1000");
}
