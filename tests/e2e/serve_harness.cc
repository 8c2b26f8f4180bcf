#include "e2e/serve_harness.h"

#include "e2e/openapi_check.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

namespace sluice::test {

namespace fs = std::filesystem;

namespace {

std::pair<std::string, int> host_port(const std::string& url) {
  std::string rest = url.substr(url.find("//") + 2);
  size_t colon = rest.rfind(':');
  return {rest.substr(0, colon), std::stoi(rest.substr(colon + 1))};
}

}  // namespace

nlohmann::json Reply::json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string Reply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

void write_workflow(const TempDir& dir, const std::string& name, const std::string& toml) {
  dir.write("workflows/" + name + ".toml", toml);
}

TestServer::TestServer(const TempDir& dir, std::vector<std::string> args, std::vector<std::string> env)
    : dir_(dir), args_(std::move(args)), env_(std::move(env)) {
  fs::create_directories(dir_ / "workflows");
}

TestServer::~TestServer() {
  if (pid_ > 0) stop();
  // The runs it started live in their own sessions: end them too (SIGTERM:
  // they cancel their steps), so no test leaves processes behind.
  std::vector<int> runs;
  for (const fs::directory_entry& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(e.path().string() + "/cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(" run --queued ") != std::string::npos && cmdline.find(home()) != std::string::npos) {
      runs.push_back(std::stoi(name));
      ::kill(runs.back(), SIGTERM);
    }
  }
  for (int waited = 0; waited < 1000; ++waited) {
    bool any = false;
    for (int pid : runs) any = any || process_alive(pid);
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void TestServer::start() {
  const std::string ready = dir_ / ("ready-" + std::to_string(++starts_));
  fs::remove(ready);
  std::vector<std::string> argv = {"serve", "--listen", "127.0.0.1:0", "--workflows", dir_ / "workflows",
                                   "--home", home(), "--ready-file", ready};
  argv.insert(argv.end(), args_.begin(), args_.end());
  pid_ = spawn_sluice(argv, dir_.path(), dir_ / "serve.out", dir_ / ("serve-" + std::to_string(starts_) + ".err"), env_);
  INFO(log());
  REQUIRE(wait_for_file(ready, 20000));
  url_ = read_file(ready);
  while (!url_.empty() && url_.back() == '\n') url_.pop_back();
}

std::string TestServer::log() const {
  std::string all;
  for (int i = 1; i <= starts_; ++i) all += read_file(dir_ / ("serve-" + std::to_string(i) + ".err"));
  return all;
}

int TestServer::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = wait_sluice(pid_, 30);
  pid_ = 0;
  return status;
}

void TestServer::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_sluice(pid_, 30);
  pid_ = 0;
}

int TestServer::wait_exit(int timeout_s) {
  const int status = wait_sluice(pid_, timeout_s);
  pid_ = 0;
  return status;
}

void TestServer::signal(int sig) { ::kill(pid_, sig); }

TestServer::TokenInfo TestServer::token_info(const std::string& scope, const std::string& workflow,
                                             const std::string& expires) const {
  std::vector<std::string> args = {"token", "create", "--json", "--scope", scope, "--home", home()};
  if (!workflow.empty()) args.insert(args.end(), {"--workflow", workflow});
  if (!expires.empty()) args.insert(args.end(), {"--expires", expires});
  RunResult r = run_sluice(args, dir_.path());
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  return TokenInfo{j["token"], j["id"], j["expires_at"].is_string() ? j["expires_at"].get<std::string>() : ""};
}

std::string TestServer::token(const std::string& scope, const std::string& workflow, const std::string& expires) const {
  return token_info(scope, workflow, expires).secret;
}

Reply TestServer::request(const std::string& method, const std::string& path, const std::string& body,
                          const std::map<std::string, std::string>& headers) const {
  auto [host, port] = host_port(url_);
  httplib::Client cli(host, port);
  cli.set_read_timeout(30, 0);
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  httplib::Result res = method == "GET"   ? cli.Get(path, h)
                        : method == "PUT" ? cli.Put(path, h, body, "application/json")
                                          : cli.Post(path, h, body, "application/json");
  Reply out;
  if (!res) return out;
  out.status = res->status;
  out.body = res->body;
  for (const auto& [k, v] : res->headers) {
    std::string lower = k;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[lower] = v;
  }
  // Every answer a test gets is checked against docs/openapi.yaml.
  const std::string mismatch = openapi_mismatch(method, path, out.status, out.header("content-type"), out.body);
  INFO("response body: " << out.body.substr(0, 2000));
  CHECK(mismatch == "");
  return out;
}

Reply TestServer::get(const std::string& path, const std::string& token) const {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("GET", path, "", h);
}

Reply TestServer::post(const std::string& path, const std::string& body, const std::string& token,
                       const std::map<std::string, std::string>& headers) const {
  std::map<std::string, std::string> h = headers;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("POST", path, body, h);
}

Reply TestServer::put(const std::string& path, const std::string& body, const std::string& token) const {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("PUT", path, body, h);
}

nlohmann::json TestServer::wait_run(const std::string& run_id, const std::string& token, int timeout_s) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  nlohmann::json run;
  while (std::chrono::steady_clock::now() < deadline) {
    Reply r = get("/api/v1/runs/" + run_id, token);
    run = r.json();
    if (r.status == 200) {
      const std::string s = run.value("status", "");
      if (s == "succeeded" || s == "failed" || s == "cancelled") return run;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return run;
}

int TestServer::count_runs(const std::string& admin_token) const {
  Reply r = get("/api/v1/runs?limit=500", admin_token);
  REQUIRE(r.status == 200);
  return static_cast<int>(r.json()["runs"].size());
}

std::string raw_exchange(const std::string& url, const std::string& bytes, int timeout_ms) {
  auto [host, port] = host_port(url);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "<connect failed>";
  }
  (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0) out += "<timeout>";
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

RawConnection::RawConnection(const std::string& url) {
  auto [host, port] = host_port(url);
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
}

RawConnection::~RawConnection() { ::close(fd_); }

void RawConnection::send(const std::string& bytes) { (void)!::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

std::string RawConnection::read_response(int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto more = [&] {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffered_.append(buf, static_cast<size_t>(n));
    return true;
  };
  size_t end;
  while ((end = buffered_.find("\r\n\r\n")) == std::string::npos)
    if (!more()) return "";
  size_t length = 0;
  std::string head = buffered_.substr(0, end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (size_t at = head.find("content-length: "); at != std::string::npos) length = std::stoul(head.substr(at + 16));
  while (buffered_.size() < end + 4 + length)
    if (!more()) return "";
  std::string out = buffered_.substr(0, end + 4 + length);
  buffered_.erase(0, end + 4 + length);
  return out;
}

std::string github_signature(const std::string& secret, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

}  // namespace sluice::test
