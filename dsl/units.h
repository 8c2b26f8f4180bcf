#pragma once
// Durations ("90s", "5m", "2h", "1h30m", "250ms", "1d") and sizes ("512M",
// "4G"). Parsers return false and set `error` to a one-line reason.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::dsl {

using Duration = std::chrono::milliseconds;

bool parse_duration(std::string_view text, Duration& out, std::string& error);
bool parse_size(std::string_view text, uint64_t& bytes, std::string& error);

// Canonical renderings ("1h30m", "512M") used by `sluice graph` and messages.
std::string format_duration(Duration d);
std::string format_size(uint64_t bytes);

}  // namespace sluice::dsl
