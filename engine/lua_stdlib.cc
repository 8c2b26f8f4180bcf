// The `sluice` module: registration, and the small parts (log, metric, fs,
// time, json). CSV, statistics and HTTP live in lua_csv.cc, lua_stats.cc and
// lua_http.cc.
#include "engine/lua_stdlib.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>

#include <nlohmann/json.hpp>

namespace sluice::engine::lua {

namespace {

char kToStringKey, kJsonNullKey;

void push_registry(lua_State* L, void* key) {
  lua_pushlightuserdata(L, key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

// --- paths ---

std::string normal(const std::string& path) {  // collapses "//", "/./" and a trailing "/"
  std::string out;
  out.reserve(path.size());
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    const std::string_view part(path.data() + i, j - i);
    if (!part.empty() && part != ".") {
      out += '/';
      out += part;
    }
    i = j + 1;
  }
  return out.empty() ? "/" : out;
}

bool under(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/');
}

std::string real_path(const std::string& path) {  // "" with errno set when it fails
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r) return {};
  std::string out = r;
  std::free(r);
  return out;
}

void resolve_roots(lua_State* L, StepContext& c, const char* fn) {
  if (c.resolved) return;
  c.real_workdir = real_path(c.in->workdir);
  if (c.real_workdir.empty()) raise(L, fn, "the work dir '" + c.in->workdir + "' is not usable: " + std::strerror(errno));
  for (const auto& [name, path] : c.in->inputs) {
    std::string r = real_path(path);
    if (!r.empty()) c.real_inputs.push_back(std::move(r));
  }
  c.resolved = true;
}

bool real_allowed(const StepContext& c, const std::string& real, bool inputs_too) {
  if (under(real, c.real_workdir)) return true;
  if (inputs_too)
    for (const std::string& in : c.real_inputs)
      if (under(real, in)) return true;
  return false;
}

// --- log, metric ---

int log_at(lua_State* L, LuaLogLine::Level level, const char* fn) {
  StepContext& c = step_of(L, fn);
  add_log(c, level, join_args(L, 1, " "));
  return 0;
}
int log_info(lua_State* L) { return log_at(L, LuaLogLine::Level::Info, "log.info"); }
int log_warn(lua_State* L) { return log_at(L, LuaLogLine::Level::Warn, "log.warn"); }
int log_error(lua_State* L) { return log_at(L, LuaLogLine::Level::Error, "log.error"); }

// metric(name, value[, step])
int metric(lua_State* L) {
  StepContext& c = step_of(L, "metric");
  size_t len = 0;
  const char* name = luaL_checklstring(L, 1, &len);
  if (len == 0 || len > 255) raise(L, "metric", "a metric name has 1 to 255 characters");
  for (size_t i = 0; i < len; ++i)
    if (std::isspace(static_cast<unsigned char>(name[i])) || static_cast<unsigned char>(name[i]) < 0x20)
      raise(L, "metric", std::string("metric name '") + name + "' contains white space or a control character");
  if (lua_type(L, 2) != LUA_TNUMBER) raise(L, "metric", std::string("value of '") + name + "' is a " + luaL_typename(L, 2) + ", not a number");
  const double value = lua_tonumber(L, 2);
  if (!std::isfinite(value)) raise(L, "metric", std::string("value of '") + name + "' is " + format_number(value));
  LuaMetric m{std::string(name, len), value, std::nullopt};
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TNUMBER) raise(L, "metric", std::string("step of '") + name + "' is a " + luaL_typename(L, 3) + ", not a number");
    const double step = lua_tonumber(L, 3);
    if (!(step >= 0 && step <= 9007199254740992.0) || step != std::floor(step))
      raise(L, "metric", std::string("step of '") + name + "' must be a whole number >= 0, not " + format_number(step));
    m.step = static_cast<int64_t>(step);
  }
  c.out->metrics.push_back(std::move(m));
  return 0;
}

// --- fs ---

int fs_read(lua_State* L) {
  StepContext& c = step_of(L, "fs.read");
  const std::string path = resolve_path(L, c, "fs.read", luaL_checkstring(L, 1), Access::Read);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) raise(L, "fs.read", "cannot read '" + std::string(lua_tostring(L, 1)) + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    raise(L, "fs.read", "'" + std::string(lua_tostring(L, 1)) + "' is a directory");
  }
  // The text is built in Lua memory, so the step's memory limit covers it.
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    char* p = luaL_prepbuffer(&b);
    const ssize_t n = ::read(fd, p, LUAL_BUFFERSIZE);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      raise(L, "fs.read", "cannot read '" + std::string(lua_tostring(L, 1)) + "': " + std::strerror(err));
    }
    if (n == 0) break;
    luaL_addsize(&b, static_cast<size_t>(n));
  }
  ::close(fd);
  luaL_pushresult(&b);
  return 1;
}

int fs_write(lua_State* L) {
  StepContext& c = step_of(L, "fs.write");
  size_t len = 0;
  const char* data = nullptr;
  if (lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER)
    data = lua_tolstring(L, 2, &len);
  else
    raise(L, "fs.write", std::string("data is a ") + luaL_typename(L, 2) + ", not a string");
  const std::string path = resolve_path(L, c, "fs.write", luaL_checkstring(L, 1), Access::Write);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) raise(L, "fs.write", "cannot write '" + std::string(lua_tostring(L, 1)) + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      raise(L, "fs.write", "cannot write '" + std::string(lua_tostring(L, 1)) + "': " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) raise(L, "fs.write", "cannot write '" + std::string(lua_tostring(L, 1)) + "': " + std::strerror(errno));
  return 0;
}

int fs_exists(lua_State* L) {
  StepContext& c = step_of(L, "fs.exists");
  lua_pushboolean(L, !resolve_path(L, c, "fs.exists", luaL_checkstring(L, 1), Access::Exists).empty());
  return 1;
}

// list([dir]): the names in a directory (default: the work dir), sorted.
int fs_list(lua_State* L) {
  StepContext& c = step_of(L, "fs.list");
  const char* arg = luaL_optstring(L, 1, ".");
  std::vector<std::string> names;
  {
    const std::string path = resolve_path(L, c, "fs.list", arg, Access::Read);
    DIR* d = ::opendir(path.c_str());
    if (!d) raise(L, "fs.list", "cannot list '" + std::string(arg) + "': " + std::strerror(errno));
    while (const dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  lua_createtable(L, static_cast<int>(names.size()), 0);
  for (size_t i = 0; i < names.size(); ++i) {
    lua_pushlstring(L, names[i].data(), names[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

// --- time ---

int time_now(lua_State* L) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  lua_pushnumber(L, std::chrono::duration<double>(now).count());
  return 1;
}

// format([t [, fmt]]): strftime in UTC; t in seconds (default now), fmt
// default ISO 8601 "%Y-%m-%dT%H:%M:%SZ".
int time_format(lua_State* L) {
  double t = lua_isnoneornil(L, 1) ? std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()
                                    : luaL_checknumber(L, 1);
  const char* fmt = luaL_optstring(L, 2, "%Y-%m-%dT%H:%M:%SZ");
  if (!std::isfinite(t) || std::fabs(t) > 1e15) raise(L, "time.format", "time " + format_number(t) + " is out of range");
  const std::time_t secs = static_cast<std::time_t>(std::floor(t));
  std::tm tm{};
  if (!::gmtime_r(&secs, &tm)) raise(L, "time.format", "time " + format_number(t) + " is out of range");
  char buf[1024];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"  // the script's format: strftime only reads it
  const size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
#pragma GCC diagnostic pop
  if (n == 0 && *fmt) raise(L, "time.format", std::string("format '") + fmt + "' gives an empty or too long text");
  lua_pushlstring(L, buf, n);
  return 1;
}

// --- json ---

using json = nlohmann::json;

bool is_json_null(lua_State* L, int index) {
  if (lua_type(L, index) != LUA_TUSERDATA) return false;
  push_registry(L, &kJsonNullKey);
  const bool same = lua_rawequal(L, index, -1);
  lua_pop(L, 1);
  return same;
}

// The value at `index` as JSON; `where` names the place for errors ($.a[2]).
json to_json(lua_State* L, int index, std::string& where, int depth) {
  if (depth > 200) raise(L, "json.encode", "nested more than 200 levels at " + where + " (a cycle?)");
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return nullptr;
    case LUA_TBOOLEAN:
      return static_cast<bool>(lua_toboolean(L, index));
    case LUA_TNUMBER: {
      const double d = lua_tonumber(L, index);
      if (!std::isfinite(d)) raise(L, "json.encode", "cannot encode " + format_number(d) + " at " + where);
      if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
      return d;
    }
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, index, &len);
      return std::string(s, len);
    }
    case LUA_TTABLE:
      break;
    default:
      if (is_json_null(L, index)) return nullptr;
      raise(L, "json.encode", std::string("cannot encode a ") + luaL_typename(L, index) + " at " + where);
  }
  luaL_checkstack(L, 4, "json.encode: nested too deeply");
  // An array when the keys are exactly 1..n (n >= 1); otherwise an object.
  size_t count = 0;
  double max_key = 0;
  bool all_ints = true;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    ++count;
    if (lua_type(L, -2) == LUA_TNUMBER) {
      const double k = lua_tonumber(L, -2);
      if (k >= 1 && k == std::floor(k))
        max_key = std::max(max_key, k);
      else
        all_ints = false;
    } else {
      all_ints = false;
    }
    lua_pop(L, 1);
  }
  const size_t base_len = where.size();
  if (count > 0 && all_ints && max_key == static_cast<double>(count)) {
    json arr = json::array();
    arr.get_ref<json::array_t&>().reserve(count);
    for (size_t i = 1; i <= count; ++i) {
      lua_rawgeti(L, index, static_cast<int>(i));
      where += "[" + std::to_string(i) + "]";
      arr.push_back(to_json(L, lua_gettop(L), where, depth + 1));
      where.resize(base_len);
      lua_pop(L, 1);
    }
    return arr;
  }
  json obj = json::object();
  lua_pushnil(L);
  while (lua_next(L, index)) {
    std::string key;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t len = 0;
      const char* k = lua_tolstring(L, -2, &len);
      key.assign(k, len);
    } else if (lua_type(L, -2) == LUA_TNUMBER) {
      key = format_number(lua_tonumber(L, -2));
    } else {
      raise(L, "json.encode", std::string("a table key at ") + where + " is a " + luaL_typename(L, -2) +
                                  "; JSON keys are strings or numbers");
    }
    where += "." + key;
    json v = to_json(L, lua_gettop(L), where, depth + 1);
    where.resize(base_len);
    obj[key] = std::move(v);
    lua_pop(L, 1);
  }
  return obj;
}

// encode(value [, {indent = n}]): object keys sorted; an empty table is {}.
int json_encode(lua_State* L) {
  int indent = -1;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "indent");
    if (!lua_isnil(L, -1)) indent = static_cast<int>(luaL_checkinteger(L, -1));
    lua_pop(L, 1);
  }
  std::string text;
  std::string error;
  {
    std::string where = "$";
    lua_settop(L, 1);
    json j = to_json(L, 1, where, 0);
    try {
      text = j.dump(indent);
    } catch (const json::type_error&) {
      error = "a string is not valid UTF-8";
    }
  }
  if (!error.empty()) raise(L, "json.encode", error);
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

// Builds Lua values directly from the parser's events, so decoded data lives
// in Lua memory (under the step's memory limit) and never as a C++ DOM.
class LuaSax {
 public:
  explicit LuaSax(lua_State* L) : L_(L) {}
  std::string error;

  bool null() {
    push_registry(L_, &kJsonNullKey);
    return done();
  }
  bool boolean(bool v) {
    lua_pushboolean(L_, v);
    return done();
  }
  bool number_integer(json::number_integer_t v) {
    lua_pushnumber(L_, static_cast<double>(v));
    return done();
  }
  bool number_unsigned(json::number_unsigned_t v) {
    lua_pushnumber(L_, static_cast<double>(v));
    return done();
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    lua_pushnumber(L_, v);
    return done();
  }
  bool string(json::string_t& v) {
    lua_pushlstring(L_, v.data(), v.size());
    return done();
  }
  bool binary(json::binary_t&) {
    error = "binary values are not supported";
    return false;
  }
  bool start_object(std::size_t) { return open(false); }
  bool key(json::string_t& k) {
    lua_pushlstring(L_, k.data(), k.size());
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(true); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    error = ex.what();
    const size_t p = error.find("] ");
    if (error.rfind("[json.exception", 0) == 0 && p != std::string::npos) error.erase(0, p + 2);
    return false;
  }

 private:
  struct Frame {
    bool array;
    int n;
  };
  bool open(bool array) {
    if (frames_.size() >= 1000) {
      error = "nested more than 1000 levels";
      return false;
    }
    luaL_checkstack(L_, 4, "json.decode: nested too deeply");
    lua_newtable(L_);
    frames_.push_back({array, 0});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return done();
  }
  bool done() {  // a complete value is on top: store it in its container
    if (frames_.empty()) return true;
    Frame& f = frames_.back();
    if (f.array)
      lua_rawseti(L_, -2, ++f.n);
    else
      lua_rawset(L_, -3);
    return true;
  }
  lua_State* L_;
  std::vector<Frame> frames_;
};

int json_decode(lua_State* L) {
  size_t len = 0;
  const char* text = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  std::string error;
  {
    LuaSax sax(L);
    bool ok = false;
    try {
      ok = json::sax_parse(text, text + len, &sax);
    } catch (const std::exception& e) {
      sax.error = e.what();
    }
    if (!ok) error = sax.error.empty() ? "invalid JSON" : sax.error;
  }
  if (!error.empty()) raise(L, "json.decode", error);
  lua_settop(L, 2);
  return 1;
}

int json_null_tostring(lua_State* L) {
  lua_pushliteral(L, "sluice.json.null");
  return 1;
}

void set_functions(lua_State* L, std::initializer_list<std::pair<const char*, lua_CFunction>> fns) {
  for (const auto& [name, fn] : fns) {
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
  }
}

}  // namespace

// --- shared helpers ---

StepContext& step_of(lua_State* L, const char* fn) {
  StepContext* c = current_step(L);
  if (!c) raise(L, fn, "only available in a Lua step");
  return *c;
}

void raise(lua_State* L, const char* fn, const std::string& message) {
  luaL_where(L, 1);
  lua_pushstring(L, fn);
  lua_pushliteral(L, ": ");
  lua_pushlstring(L, message.data(), message.size());
  lua_concat(L, 4);
  lua_error(L);
  std::abort();  // lua_error does not return
}

std::string format_number(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  std::to_chars_result r;
  if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0)
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(d));
  else
    r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

std::vector<double> check_numbers(lua_State* L, int index, const char* fn, const char* what) {
  if (!lua_istable(L, index))
    raise(L, fn, std::string(what) + " is a " + luaL_typename(L, index) + ", not an array of numbers");
  const size_t n = lua_objlen(L, index);
  std::vector<double> xs;
  xs.reserve(n);
  for (size_t i = 1; i <= n; ++i) {
    lua_rawgeti(L, index, static_cast<int>(i));
    if (lua_type(L, -1) != LUA_TNUMBER)
      raise(L, fn, std::string(what) + "[" + std::to_string(i) + "] is a " + luaL_typename(L, -1) + ", not a number");
    const double d = lua_tonumber(L, -1);
    if (std::isnan(d)) raise(L, fn, std::string(what) + "[" + std::to_string(i) + "] is NaN");
    xs.push_back(d);
    lua_pop(L, 1);
  }
  return xs;
}

void add_log(StepContext& c, LuaLogLine::Level level, std::string text) {
  if (c.log_bytes + text.size() > kMaxLogBytes) {
    ++c.log_dropped;
    return;
  }
  c.log_bytes += text.size() + 1;
  LuaLogLine line{level, std::move(text)};
  if (c.in->on_log) c.in->on_log(line);
  c.out->log.push_back(std::move(line));
}

std::string join_args(lua_State* L, int first, const char* sep) {
  std::string out;
  const int top = lua_gettop(L);
  for (int i = first; i <= top; ++i) {
    if (i > first) out += sep;
    if (lua_type(L, i) == LUA_TSTRING) {
      size_t len = 0;
      const char* s = lua_tolstring(L, i, &len);
      out.append(s, len);
      continue;
    }
    push_registry(L, &kToStringKey);  // the real tostring: __tostring metamethods work
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    if (s) out.append(s, len);
    lua_pop(L, 1);
  }
  return out;
}

std::string resolve_path(lua_State* L, StepContext& c, const char* fn, const std::string& path, Access access) {
  auto refuse = [&](const std::string& why) { raise(L, fn, "'" + path + "' is refused: " + why); };
  if (path.empty()) refuse("the path is empty");
  if (path.find('\0') != std::string::npos) refuse("the path contains a NUL byte");
  for (size_t i = 0; i <= path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (path.compare(i, j - i, "..") == 0) refuse("'..' is not allowed in sluice.fs paths");
    i = j + 1;
  }
  resolve_roots(L, c, fn);
  const std::string work = normal(c.in->workdir);
  const std::string abs = normal(path[0] == '/' ? path : c.in->workdir + "/" + path);
  const bool in_work = under(abs, work);
  bool in_input = false;
  for (const auto& [name, input] : c.in->inputs)
    if (under(abs, normal(input))) in_input = true;

  if (access == Access::Write) {
    if (in_input) refuse("declared inputs are read-only");
    if (!in_work) refuse("writing is allowed only inside the work dir");
    // The deepest existing ancestor must really be inside the work dir; the
    // missing directories below it are created.
    const size_t slash = abs.rfind('/');
    std::string parent = abs.substr(0, slash == 0 ? 1 : slash);
    std::string existing = parent;
    std::vector<std::string> missing;
    struct stat st {};
    while (::stat(existing.c_str(), &st) != 0) {
      const size_t p = existing.rfind('/');
      missing.push_back(existing);
      existing = existing.substr(0, p == 0 ? 1 : p);
    }
    const std::string real_parent = real_path(existing);
    if (real_parent.empty() || !under(real_parent, c.real_workdir)) refuse("it leads outside the work dir (through a symlink)");
    for (auto it = missing.rbegin(); it != missing.rend(); ++it)
      if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST)
        raise(L, fn, "cannot create the directory for '" + path + "': " + std::strerror(errno));
    std::string target = real_path(parent);
    if (target.empty() || !under(target, c.real_workdir)) refuse("it leads outside the work dir (through a symlink)");
    target += abs.substr(slash);
    if (::lstat(target.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      const std::string real = real_path(target);
      if (real.empty() || !under(real, c.real_workdir)) refuse("it is a symlink that leads outside the work dir");
      return real;
    }
    return target;
  }

  if (!in_work && !in_input) refuse("it is outside the work dir and the declared inputs");
  const std::string real = real_path(abs);
  if (real.empty()) {
    const int err = errno;
    if (access == Access::Exists && (err == ENOENT || err == ENOTDIR)) {
      // Missing: but do not tell whether something exists behind a symlink
      // that leads out.
      std::string existing = abs;
      struct stat st {};
      while (::lstat(existing.c_str(), &st) != 0) {
        const size_t p = existing.rfind('/');
        existing = existing.substr(0, p == 0 ? 1 : p);
      }
      const std::string r = real_path(existing);
      if (!r.empty() && !real_allowed(c, r, true)) refuse("it leads outside the work dir and the declared inputs (through a symlink)");
      return {};
    }
    raise(L, fn, "cannot open '" + path + "': " + std::strerror(err));
  }
  if (!real_allowed(c, real, true)) refuse("it leads outside the work dir and the declared inputs (through a symlink)");
  return real;
}

void push_json_null(lua_State* L) { push_registry(L, &kJsonNullKey); }

void add_json(lua_State* L) {
  lua_newtable(L);
  set_functions(L, {{"encode", json_encode}, {"decode", json_decode}});
  push_json_null(L);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -2, "json");
}

void push_sluice_template(lua_State* L) {
  lua_getglobal(L, "tostring");
  lua_pushlightuserdata(L, &kToStringKey);
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);

  // sluice.json.null: one userdata with a protected metatable; it has no
  // fields, so nothing can be stored in it.
  lua_pushlightuserdata(L, &kJsonNullKey);
  lua_newuserdata(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, json_null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_createtable(L, 0, 10);
  lua_newtable(L);
  set_functions(L, {{"info", log_info}, {"warn", log_warn}, {"error", log_error}});
  lua_setfield(L, -2, "log");
  set_functions(L, {{"metric", metric}});
  lua_newtable(L);
  set_functions(L, {{"read", fs_read}, {"write", fs_write}, {"exists", fs_exists}, {"list", fs_list}});
  lua_setfield(L, -2, "fs");
  lua_newtable(L);
  set_functions(L, {{"now", time_now}, {"format", time_format}});
  lua_setfield(L, -2, "time");
  add_json(L);
  add_csv(L);
  add_stats(L);
  add_http(L);
  add_registry(L);
}

}  // namespace sluice::engine::lua
