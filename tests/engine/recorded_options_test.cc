#include <catch2/catch.hpp>

#include "engine/recorded_options.h"

using namespace sluice::engine;

TEST_CASE("recorded options: only what differs from the defaults is written, and reads back") {
  CHECK(to_json(RecordedOptions{}) == "{}");
  RecordedOptions o;
  o.only = "train";
  o.keep_going = true;
  o.reuse = {{"prep", "20261127-040253.123-3fa9c1d2"}};
  o.pinned_inputs = {{"train", {{"data", "sha256:ab"}, {"labels", "sha256:cd"}}}};
  const std::string text = to_json(o);
  CHECK(text ==
        R"({"keep_going":true,"only":"train","pinned_inputs":{"train":{"data":"sha256:ab","labels":"sha256:cd"}},)"
        R"("reuse":{"prep":"20261127-040253.123-3fa9c1d2"}})");
  RecordedOptions back;
  std::string error;
  REQUIRE(parse_recorded_options(text, back, error));
  CHECK(back.only == "train");
  CHECK(back.from.empty());
  CHECK(back.keep_going);
  CHECK(back.reuse == o.reuse);
  CHECK(back.pinned_inputs == o.pinned_inputs);

  RecordedOptions from;
  from.from = "eval";
  CHECK(to_json(from) == R"({"from":"eval"})");
}

TEST_CASE("recorded options: a run without any (before schema version 5) reads as the defaults") {
  RecordedOptions o;
  o.keep_going = true;  // overwritten
  std::string error;
  REQUIRE(parse_recorded_options("", o, error));
  CHECK_FALSE(o.keep_going);
  REQUIRE(parse_recorded_options("{}", o, error));
  CHECK(o.only.empty());
  CHECK(o.pinned_inputs.empty());
}

TEST_CASE("recorded options: what is not such an object is refused with the reason") {
  RecordedOptions o;
  std::string error;
  CHECK_FALSE(parse_recorded_options("[1]", o, error));
  CHECK(error == "the recorded options are not a JSON object: [1]");
  CHECK_FALSE(parse_recorded_options(R"({"only":3})", o, error));
  CHECK(error == "the recorded option 'only' is not a string");
  CHECK_FALSE(parse_recorded_options(R"({"keep_going":"yes"})", o, error));
  CHECK(error == "the recorded option 'keep_going' is not true or false");
  CHECK_FALSE(parse_recorded_options(R"({"pinned_inputs":{"train":"sha256:ab"}})", o, error));
  CHECK(error == R"(the recorded options 'reuse' and 'pinned_inputs' must map names to strings: {"pinned_inputs":{"train":"sha256:ab"}})");
}
