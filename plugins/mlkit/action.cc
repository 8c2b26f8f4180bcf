#include "plugins/mlkit/action.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>

#include "plugins/mlkit/args.h"

namespace sluice::mlkit {

namespace fs = std::filesystem;

namespace {

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// Lexically inside `dir` (both absolute and normal).
bool inside(const fs::path& p, const fs::path& dir) {
  auto d = dir.begin(), e = dir.end();
  auto q = p.begin();
  for (; d != e; ++d, ++q) {
    if (d->empty() && std::next(d) == e) break;  // a trailing separator
    if (q == p.end() || *q != *d) return false;
  }
  return q != p.end();
}

}  // namespace

void Host::log(int level, const std::string& line) const {
  if (SLUICE_HOST_HAS(api_, log)) api_->log(host_, level, line.c_str());
}

void Host::metric(const std::string& name, double value, std::optional<int64_t> step) const {
  if (SLUICE_HOST_HAS(api_, metric)) api_->metric(host_, name.c_str(), value, step.value_or(SLUICE_METRIC_NO_STEP));
}

void Host::check_cancelled() const {
  if (SLUICE_HOST_HAS(api_, is_cancelled) && api_->is_cancelled(host_)) throw Cancelled{};
}

std::string Host::workdir() const {
  const char* w = SLUICE_HOST_HAS(api_, workdir) ? api_->workdir(host_) : nullptr;
  if (!w || !*w) throw Failed("the host gave no work dir");
  return w;
}

Host::File Host::input(const std::string& value) const {
  if (SLUICE_HOST_HAS(api_, input_path))
    if (const char* p = api_->input_path(host_, value.c_str())) return {p, p};
  if (!value.empty() && value.front() == '/') return {value, value};
  return {(fs::path(workdir()) / value).string(), value};
}

std::string Host::output(std::string_view arg, const std::string& value) const {
  std::string path;
  if (SLUICE_HOST_HAS(api_, output_path))
    if (const char* p = api_->output_path(host_, value.c_str())) path = p;
  if (path.empty()) {
    const fs::path v(value);
    for (const fs::path& part : v)
      if (part == "..") throw BadArgs(std::string(arg) + ": '" + value + "' is refused: '..' is not allowed");
    const fs::path dir = fs::path(workdir()).lexically_normal();
    const fs::path p = v.is_absolute() ? v.lexically_normal() : (dir / v).lexically_normal();
    if (value.empty() || !inside(p, dir))
      throw BadArgs(std::string(arg) + ": '" + value + "' is neither a declared output nor a path inside the work dir");
    path = p.string();
  }
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  return path;
}

int invoke(const ActionEntry* actions, const char* action, const char* args_json, const sluice_host_api* api, void* host,
           char** values_json, char** error) {
  auto fail = [&](int status, const std::string& message) {
    if (error) *error = dup_string(message);
    return status;
  };
  if (values_json) *values_json = nullptr;
  if (error) *error = nullptr;
  try {
    if (!api) return fail(SLUICE_FAILED, "no host callback table");
    const ActionEntry* entry = nullptr;
    std::string names;
    for (const ActionEntry* a = actions; a->name; ++a) {
      if (std::strcmp(a->name, action ? action : "") == 0) entry = a;
      names += std::string(names.empty() ? "" : ", ") + a->name;
    }
    if (!entry) return fail(SLUICE_BAD_ARGS, std::string("unknown action '") + (action ? action : "") + "' (the actions are: " + names + ")");
    nlohmann::json parsed = nlohmann::json::parse(args_json ? args_json : "{}", nullptr, false);
    if (parsed.is_discarded()) return fail(SLUICE_BAD_ARGS, "the arguments are not valid JSON");
    Args args(std::move(parsed));
    Host h(api, host);
    const nlohmann::json values = entry->fn(args, h);
    if (values_json && values.is_object() && !values.empty()) *values_json = dup_string(values.dump());
    return SLUICE_OK;
  } catch (const BadArgs& e) {
    return fail(SLUICE_BAD_ARGS, e.what());
  } catch (const Failed& e) {
    return fail(SLUICE_FAILED, e.what());
  } catch (const Cancelled&) {
    return fail(SLUICE_CANCELLED, "cancelled");
  } catch (const std::bad_alloc&) {
    return fail(SLUICE_FAILED, "out of memory");
  } catch (const std::exception& e) {
    return fail(SLUICE_FAILED, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(SLUICE_FAILED, "internal error: an unknown exception");
  }
}

void free_string(char* s) { std::free(s); }

std::string key_of(std::string_view text) {
  std::string k(text);
  for (char& c : k)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
  return k;
}

void write_file(const std::string& path, std::string_view text, const std::string& shown) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Failed("cannot write " + shown + ": " + std::strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw Failed("cannot write " + shown + ": " + std::strerror(err));
  }
}

}  // namespace sluice::mlkit
