#include "engine/cli.h"

#include <cstdio>
#include <iostream>

#include "engine/exit_status.h"
#include "engine/plugin_protocol.h"
#include "engine/plugin_worker.h"
#include "sluice/version.h"

namespace sluice::engine {

namespace {

std::vector<const Command*> commands() {
  return {&validate_command(), &graph_command(),     &run_command(),     &runs_command(),     &show_command(),
          &logs_command(),     &artifacts_command(), &lineage_command(), &why_command(),      &cache_command(),
          &cancel_command(),   &retry_command(),     &rerun_command(),   &resume_command(),   &plugins_command(),
          &models_command(),
          &serve_command(),    &token_command(),     &trigger_command(), &schedule_command()};
}

const OptionSpec kHelp{"help", 'h', "", "show this help"};

void print_overview(std::FILE* out) {
  std::string text =
      "sluice " SLUICE_VERSION " - an MLOps workflow engine\n\n"
      "usage: sluice COMMAND [OPTIONS] [ARGS]\n\ncommands:\n";
  for (const Command* c : commands()) {
    std::string left = "  " + c->name;
    left.resize(14, ' ');
    text += left + c->summary + "\n";
  }
  text += "  help          show help for sluice or a command\n\n"
          "Run 'sluice COMMAND --help' for a command's options.\n"
          "Exit status: 0 success, 1 a run failed, 2 bad input, 3 internal error.\n";
  std::fputs(text.c_str(), out);
}

std::string command_help(const Command& c) {
  std::string text = "usage: " + c.usage + "\n\n" + c.summary + "\n";
  if (!c.details.empty()) text += "\n" + c.details + "\n";
  std::vector<OptionSpec> opts = c.options;
  opts.push_back(kHelp);
  text += "\noptions:\n" + options_help(opts);
  return text;
}

const Command* find_command(const std::string& name) {
  for (const Command* c : commands())
    if (c->name == name) return c;
  return nullptr;
}

}  // namespace

int usage_error(const Command& cmd, const std::string& message) {
  std::fprintf(stderr, "sluice %s: error: %s\nusage: %s\nRun 'sluice %s --help' for more.\n", cmd.name.c_str(),
               message.c_str(), cmd.usage.c_str(), cmd.name.c_str());
  return kExitBadInput;
}

int cli_main(int argc, char** argv) {
  if (argc < 2) {
    print_overview(stderr);
    return kExitBadInput;
  }
  std::string name = argv[1];
  if (name == "--version" || name == "version") {
    std::printf("sluice %s\n", SLUICE_VERSION);
    return kExitSuccess;
  }
  if (name == "help" || name == "--help" || name == "-h") {
    if (argc > 2) {
      const Command* c = find_command(argv[2]);
      if (!c) {
        std::fprintf(stderr, "sluice: error: unknown command '%s'\n", argv[2]);
        print_overview(stderr);
        return kExitBadInput;
      }
      std::fputs(command_help(*c).c_str(), stdout);
      return kExitSuccess;
    }
    print_overview(stdout);
    return kExitSuccess;
  }
  if (name == wire::kWorkerCommand) return plugin_worker_main();  // hidden: the engine starts it
  const Command* cmd = find_command(name);
  if (!cmd) {
    std::fprintf(stderr, "sluice: error: unknown command '%s'\n\n", name.c_str());
    print_overview(stderr);
    return kExitBadInput;
  }
  std::vector<OptionSpec> opts = cmd->options;
  opts.push_back(kHelp);
  Args args;
  std::string error;
  if (!parse_args(opts, argc, argv, 2, args, error)) return usage_error(*cmd, error);
  if (args.flag("help")) {
    std::fputs(command_help(*cmd).c_str(), stdout);
    return kExitSuccess;
  }
  if (args.positional.size() < cmd->min_args) return usage_error(*cmd, "missing argument");
  if (args.positional.size() > cmd->max_args)
    return usage_error(*cmd, "unexpected argument '" + args.positional[cmd->max_args] + "'");
  return cmd->run(args);
}

}  // namespace sluice::engine
