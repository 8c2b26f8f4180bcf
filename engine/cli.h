#pragma once
// The `sluice` command line: a table of subcommands, each in its own
// cmd_NAME.cc. Commands print; the engine beneath them never does.
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "engine/args.h"

namespace sluice::engine {

struct Command {
  std::string name;
  std::string summary;  // one line for `sluice help`
  std::string usage;    // e.g. "sluice validate [--json] FILE..."
  std::string details;  // paragraphs after the usage line in `--help`
  std::vector<OptionSpec> options;
  size_t min_args = 0;
  size_t max_args = std::numeric_limits<size_t>::max();
  int (*run)(const Args& args) = nullptr;
};

const Command& validate_command();
const Command& graph_command();
const Command& run_command();
const Command& runs_command();
const Command& show_command();
const Command& plugins_command();
const Command& models_command();
const Command& logs_command();
const Command& artifacts_command();
const Command& lineage_command();
const Command& why_command();
const Command& cache_command();
const Command& cancel_command();
const Command& retry_command();
const Command& rerun_command();
const Command& resume_command();
const Command& serve_command();
const Command& token_command();
const Command& trigger_command();
const Command& schedule_command();

// The state folder: --home, else $SLUICE_HOME, else ./.sluice (absolute).
std::string state_home(const Args& args);

// Entry point of the executable; returns the process exit status.
int cli_main(int argc, char** argv);

// Prints "sluice: error: MESSAGE" and the command's usage to stderr; returns
// kExitBadInput.
int usage_error(const Command& cmd, const std::string& message);

}  // namespace sluice::engine
