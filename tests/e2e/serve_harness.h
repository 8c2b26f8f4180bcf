#pragma once
// A real `sluice serve` for end-to-end tests: its own workflows folder and
// state folder in a TempDir, a free port on 127.0.0.1, HTTP through
// cpp-httplib's client. Stopped at the end of the test, with the runs it
// started.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

namespace sluice::test {

struct Reply {
  int status = 0;  // 0 when the connection failed
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  nlohmann::json json() const;                 // the body parsed (discarded when not JSON)
  std::string header(const std::string& name) const;
};

class TestServer {
 public:
  // `dir/workflows` holds the workflow files, `dir/home` the state.
  explicit TestServer(const TempDir& dir, std::vector<std::string> args = {}, std::vector<std::string> env = {});
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // Starts the server and waits until it listens. Fails the test if it does not.
  void start();
  // SIGTERM and wait; the exit status.
  int stop();
  // SIGKILL and wait.
  void kill9();
  // Waits for the server to exit on its own; its exit status (128 + signal).
  int wait_exit(int timeout_s = 30);
  void signal(int sig);
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }
  std::string log() const;  // what the server printed on stderr

  const std::string& url() const { return url_; }
  std::string home() const { return dir_ / "home"; }

  // `sluice token create` in the server's home; the secret.
  std::string token(const std::string& scope, const std::string& workflow = "", const std::string& expires = "") const;
  // The same, with the token's public id and times (`sluice token create --json`).
  struct TokenInfo {
    std::string secret, id, expires_at;
  };
  TokenInfo token_info(const std::string& scope, const std::string& workflow = "", const std::string& expires = "") const;

  Reply get(const std::string& path, const std::string& token = "") const;
  Reply post(const std::string& path, const std::string& body, const std::string& token = "",
             const std::map<std::string, std::string>& headers = {}) const;
  Reply put(const std::string& path, const std::string& body, const std::string& token = "") const;
  // GET, POST or PUT; the answer is checked against docs/openapi.yaml.
  Reply request(const std::string& method, const std::string& path, const std::string& body,
                const std::map<std::string, std::string>& headers) const;

  // Polls GET /api/v1/runs/ID until its status is final (or `timeout_s`); the run.
  nlohmann::json wait_run(const std::string& run_id, const std::string& token, int timeout_s = 60) const;
  // How many runs the store holds (every workflow, every status).
  int count_runs(const std::string& admin_token) const;

 private:
  const TempDir& dir_;
  std::vector<std::string> args_, env_;
  std::string url_;
  int pid_ = 0;
  int starts_ = 0;
};

// The whole workflows folder's worth of a test: writes `dir/workflows/NAME.toml`.
void write_workflow(const TempDir& dir, const std::string& name, const std::string& toml);

// Sends raw bytes on a fresh connection and reads until the server closes
// it or `timeout_ms` passes; what came back.
std::string raw_exchange(const std::string& url, const std::string& bytes, int timeout_ms);

// One kept-alive connection written and read by hand, for what an HTTP
// client library would not send (chunked bodies, stalled headers). One
// request at a time: cpp-httplib does not read pipelined requests.
class RawConnection {
 public:
  explicit RawConnection(const std::string& url);
  ~RawConnection();
  void send(const std::string& bytes);
  // Reads one response (headers and a Content-Length body); "" if the
  // connection closed or `timeout_ms` passed first.
  std::string read_response(int timeout_ms = 10000);

 private:
  int fd_ = -1;
  std::string buffered_;
};

// HMAC-SHA256 of `body` under `secret` as GitHub sends it: "sha256=<hex>".
std::string github_signature(const std::string& secret, const std::string& body);

}  // namespace sluice::test
