#pragma once
// The deploy plugin's actions; each returns its values as a JSON object text
// and throws sluice::plugin::Error subclasses on failure.
#include <string>

#include "plugins/support/args.h"
#include "sluice/plugin.hpp"

namespace sluice::plugins::deploy {

// release_dir.cc: <root>/releases/<version>/, <root>/current, <root>/history.jsonl
std::string release(const sluice::plugin::Host& host, const Args& args);
std::string rollback(const sluice::plugin::Host& host, const Args& args);

// http_deploy.cc
std::string http(const sluice::plugin::Host& host, const Args& args);

}  // namespace sluice::plugins::deploy
