#pragma once
// What the commands that read the store share: common options, times, sizes,
// and naming an artifact on the command line.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/args.h"
#include "registry/store.h"

namespace sluice::engine {

extern const OptionSpec kHomeOption;  // --home DIR
extern const OptionSpec kJsonOption;  // --json

// "2026-11-27T04:02:53Z"; "-" when absent.
std::string iso_time(std::optional<int64_t> ms);
// "12 B", "3.4 KB", "1.2 GB" (powers of 1000).
std::string format_bytes(int64_t bytes);
// "1 step", "3 steps": `n` and the noun, with an 's' unless n is 1.
std::string count_noun(size_t n, const std::string& noun);

// The recorded artifact `text` names: a whole digest ("sha256:<hex>" or
// "sha256:<hex>.tree"), or the start of one ("sha256:9c38b", "9c38b", at
// least 4 hex digits) that only one artifact has. nullopt with `error`.
std::optional<registry::ArtifactRow> find_artifact(registry::Store& store, const std::string& text, std::string& error);

}  // namespace sluice::engine
