// `sluice serve`: the HTTP API, webhooks, the run queue and the scheduler.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dsl/units.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/serve.h"

namespace sluice::engine {

namespace {

bool parse_number(const std::string& text, double& out) {
  auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size() && out >= 0;
}

bool parse_listen(const std::string& text, std::string& host, int& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string p = text.substr(colon + 1);
  auto r = std::from_chars(p.data(), p.data() + p.size(), port);
  return !host.empty() && r.ec == std::errc() && r.ptr == p.data() + p.size() && port >= 0 && port <= 65535;
}

std::string self_exe() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("sluice") : p.string();
}

int run_serve(const Args& args) {
  const Command& cmd = serve_command();
  ServeOptions opt;
  if (!parse_listen(args.value("listen", "127.0.0.1:8080"), opt.host, opt.port))
    return usage_error(cmd, "--listen needs HOST:PORT, found '" + args.value("listen") + "'");
  opt.workflows_dir = args.value("workflows", ".");
  std::error_code ec;
  if (!std::filesystem::is_directory(opt.workflows_dir, ec))
    return usage_error(cmd, "--workflows " + opt.workflows_dir + " is not a folder");
  opt.home = state_home(args);
  double n = 0;
  if (!args.value("max-runs").empty()) {
    if (!parse_number(args.value("max-runs"), n) || n < 1 || n > 4096 || n != static_cast<unsigned>(n))
      return usage_error(cmd, "--max-runs needs a whole number from 1, found '" + args.value("max-runs") + "'");
    opt.max_runs = static_cast<unsigned>(n);
  }
  if (!args.value("threads").empty()) {
    if (!parse_number(args.value("threads"), n) || n < 4 || n > 4096 || n != static_cast<unsigned>(n))
      return usage_error(cmd, "--threads needs a whole number from 4, found '" + args.value("threads") + "'");
    opt.threads = static_cast<unsigned>(n);
  }
  if (!args.value("max-body").empty()) {
    uint64_t bytes = 0;
    std::string error;
    if (!dsl::parse_size(args.value("max-body"), bytes, error) || bytes == 0)
      return usage_error(cmd, "--max-body " + args.value("max-body") + ": " + (error.empty() ? "must be above 0" : error));
    opt.max_body = bytes;
  }
  for (const char* name : {"read-timeout", "idle-timeout"}) {
    if (args.value(name).empty()) continue;
    dsl::Duration d{};
    std::string error;
    if (!dsl::parse_duration(args.value(name), d, error) || d.count() < 1000)
      return usage_error(cmd, std::string("--") + name + " " + args.value(name) + ": " +
                                  (error.empty() ? "must be at least 1s" : error));
    (std::string(name) == "read-timeout" ? opt.read_timeout_s : opt.idle_timeout_s) = static_cast<int>(d.count() / 1000);
  }
  if (!args.value("rate-limit").empty()) {
    if (!parse_number(args.value("rate-limit"), opt.rate_limit))
      return usage_error(cmd, "--rate-limit needs requests per second (0 = no limit), found '" + args.value("rate-limit") + "'");
    opt.rate_burst = opt.rate_limit * 2;
  }
  if (!args.value("rate-burst").empty() && (!parse_number(args.value("rate-burst"), opt.rate_burst) || opt.rate_burst < 1))
    return usage_error(cmd, "--rate-burst needs a number from 1, found '" + args.value("rate-burst") + "'");
  if (!args.value("webhook-secret-file").empty()) {
    std::ifstream in(args.value("webhook-secret-file"));
    std::stringstream ss;
    ss << in.rdbuf();
    opt.webhook_secret = ss.str();
    while (!opt.webhook_secret.empty() && (opt.webhook_secret.back() == '\n' || opt.webhook_secret.back() == '\r'))
      opt.webhook_secret.pop_back();
    if (!in || opt.webhook_secret.empty())
      return usage_error(cmd, "--webhook-secret-file " + args.value("webhook-secret-file") + " cannot be read or is empty");
  } else if (const char* env = std::getenv("SLUICE_WEBHOOK_SECRET")) {
    opt.webhook_secret = env;
  }
  opt.exe = self_exe();

  // Signals go to one thread, which turns them into reload() and stop();
  // every other thread (and, reset, every run) has them blocked.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Server server(opt, make_wall_clock());
  std::string error;
  if (!server.start(error)) {
    std::fprintf(stderr, "sluice serve: error: %s\n", error.c_str());
    return kExitInternal;
  }
  const std::string url = "http://" + opt.host + ":" + std::to_string(server.port());
  std::fprintf(stderr, "sluice serve: listening on %s (state in %s, at most %u runs at once)\n", url.c_str(),
               opt.home.c_str(), opt.max_runs);
  if (!args.value("ready-file").empty()) {
    const std::string path = args.value("ready-file"), tmp = path + ".tmp";
    std::ofstream(tmp) << url << "\n";
    std::filesystem::rename(tmp, path, ec);
  }
  std::thread signals([&server, set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        std::fprintf(stderr, "sluice serve: SIGHUP: reloading the workflows\n");
        server.reload();
        continue;
      }
      if (sig != SIGUSR1) std::fprintf(stderr, "sluice serve: %s: draining\n", strsignal(sig));
      server.stop();
      return;
    }
  });
  server.run();
  pthread_kill(signals.native_handle(), SIGUSR1);  // if run() ended on its own
  signals.join();
  std::fprintf(stderr, "sluice serve: stopped\n");
  return kExitSuccess;
}

}  // namespace

const Command& serve_command() {
  static const Command cmd{
      "serve",
      "serve the HTTP API, GitHub webhooks and schedules; run queued runs",
      "sluice serve [--listen HOST:PORT] [--workflows DIR] [--home DIR] [--max-runs N] [OPTIONS]",
      "Serves every workflow file (*.toml) in --workflows that validates; SIGHUP reloads\n"
      "them, SIGTERM drains (requests in flight finish, runs keep going and the next\n"
      "server adopts them). Every endpoint but /healthz and /hooks/github needs a token\n"
      "from 'sluice token create'. See docs/api.md.",
      {{"listen", 0, "HOST:PORT", "where to listen (default 127.0.0.1:8080; port 0 = any free port)"},
       {"workflows", 0, "DIR", "the folder of workflow files to serve (default: .)"},
       {"home", 0, "DIR", "the state folder (default: $SLUICE_HOME or ./.sluice)"},
       {"max-runs", 0, "N", "runs executing at once (default 2); the rest wait queued"},
       {"max-body", 0, "SIZE", "largest request body (default 1M); a larger one gets 413, unparsed"},
       {"read-timeout", 0, "DURATION", "drop a request whose headers or body stall this long (default 10s)"},
       {"idle-timeout", 0, "DURATION", "close a kept-alive connection idle this long (default 5s)"},
       {"rate-limit", 0, "N", "requests per second per token (default 20; 0 = no limit)"},
       {"rate-burst", 0, "N", "requests a token may make at once (default 2 x --rate-limit)"},
       {"threads", 0, "N", "connections served at once (default 64)"},
       {"webhook-secret-file", 0, "FILE", "enable POST /hooks/github with this secret ($SLUICE_WEBHOOK_SECRET works too)"},
       {"ready-file", 0, "FILE", "write the server's URL here once it listens"}},
      0,
      0,
      run_serve};
  return cmd;
}

}  // namespace sluice::engine
