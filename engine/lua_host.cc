#include "engine/lua_host.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include <lua.hpp>

namespace sluice::engine {

namespace {

using Clock = std::chrono::steady_clock;

// VM instructions between two checks of the limits. The check costs one clock
// read; 10,000 instructions take some tens of microseconds in the interpreter.
constexpr int kHookEvery = 10'000;
// Compiled `when` chunks kept per host (keyed by expression text); the cache is
// dropped and rebuilt when full.
constexpr size_t kMaxChunks = 256;

// Registry keys: the addresses of these objects, as light userdata.
char kStateKey, kBaseKey, kLibsKey, kEnvMetaKey, kStepsMetaKey, kChunksKey, kTimeMsgKey, kMemMsgKey;

// The base functions a sandboxed chunk sees (plus pcall/xpcall, wrapped).
constexpr const char* kAllowedBase[] = {
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type", "unpack",
    "rawequal", "rawget", "rawlen", "setmetatable", "getmetatable", "_VERSION"};
// The libraries; each call gets its own copy of those it reads.
constexpr const char* kAllowedLibs[] = {"string", "table", "math", "coroutine"};
// Names that exist in a full LuaJIT but not in the sandbox; reading one is an error.
constexpr const char* kBlocked[] = {
    "os", "io", "package", "require", "ffi", "jit", "debug", "load", "loadstring", "dofile", "loadfile",
    "collectgarbage", "getfenv", "setfenv", "module", "newproxy", "gcinfo", "print", "rawset", "bit"};

// pcall, xpcall and coroutine.resume catch errors; a sandboxed chunk must not
// catch the error that enforces a limit and carry on, so these wrappers re-raise
// whatever they caught once the call has been aborted. Written in Lua so that
// yields across them keep working.
constexpr const char kWrappers[] = R"lua(
local pcall, xpcall, resume, error, aborted = ...
local function pass(ok, ...)
  if not ok and aborted() then error((...), 0) end
  return ok, ...
end
return function(...) return pass(pcall(...)) end,
  function(...) return pass(xpcall(...)) end,
  function(...) return pass(resume(...)) end
)lua";

enum class Abort { None, Time, Memory };

void push_registry(lua_State* L, void* key) {
  lua_pushlightuserdata(L, key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

void set_registry(lua_State* L, void* key) {  // registry[key] = top, popped
  lua_pushlightuserdata(L, key);
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

}  // namespace

struct LuaHost::State {
  lua_State* L = nullptr;
  bool counting = false;  // the state runs on counting_alloc
  uint64_t bytes = 0;     // counting_alloc: bytes held
  // The current call's limits; outside a call nothing is limited.
  bool active = false;
  uint64_t limit = std::numeric_limits<uint64_t>::max();
  Clock::time_point deadline;
  Abort abort = Abort::None;
  uint64_t gc_floor = 0;  // bytes held after the last full GC the hook ran
  size_t chunks = 0;      // entries in the chunk cache

  uint64_t used() const {
    if (counting) return bytes;
    return static_cast<uint64_t>(lua_gc(L, LUA_GCCOUNT, 0)) * 1024 + static_cast<uint64_t>(lua_gc(L, LUA_GCCOUNTB, 0));
  }
};

namespace {

using State = LuaHost::State;

// Refuses growth past the limit while a call runs; LuaJIT turns the refusal
// into a LUA_ERRMEM error that unwinds the call.
void* counting_alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* s = static_cast<State*>(ud);
  const size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    s->bytes -= old;
    return nullptr;
  }
  if (nsize > old && s->active && s->bytes + (nsize - old) > s->limit) {
    s->abort = Abort::Memory;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (p) s->bytes = s->bytes - old + nsize;
  return p;
}

State* state_of(lua_State* L) {
  push_registry(L, &kStateKey);
  auto* s = static_cast<State*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return s;
}

[[noreturn]] void raise_abort(lua_State* L, const State* s) {
  // Kept in the registry since start-up, so pushing one allocates nothing.
  push_registry(L, s->abort == Abort::Time ? &kTimeMsgKey : &kMemMsgKey);
  lua_error(L);
  std::abort();  // lua_error does not return
}

// Hooks are global to a LuaJIT state (not per coroutine as in PUC Lua 5.1), so
// this one hook also runs inside every coroutine.
void count_hook(lua_State* L, lua_Debug*) {
  State* s = state_of(L);
  if (!s || !s->active) return;
  if (s->abort == Abort::None) {
    if (Clock::now() >= s->deadline) {
      s->abort = Abort::Time;
    } else {
      uint64_t used = s->used();
      // Near the limit, collect garbage before the allocator has to refuse
      // (LuaJIT has no emergency GC); not again until the heap grew by 1/8.
      if (used > s->limit / 4 * 3 && used > s->gc_floor + s->limit / 8) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        s->gc_floor = used = s->used();
      }
      if (used > s->limit) s->abort = Abort::Memory;  // the non-counting fallback
    }
  }
  if (s->abort != Abort::None) raise_abort(L, s);
}

int lua_aborted(lua_State* L) {
  State* s = state_of(L);
  lua_pushboolean(L, s && s->abort != Abort::None);
  return 1;
}

// Pushes a fresh copy of the table at `index`.
void push_copy(lua_State* L, int index) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    ++n;
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, n);
  lua_pushnil(L);
  while (lua_next(L, index)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

// __index of every sandbox environment (env, key). An allowed library is
// copied on first use and kept in the environment for the rest of the call;
// blocked names fail loudly; other unknown names are nil.
int env_index(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  push_registry(L, &kLibsKey);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (lua_istable(L, -1)) {
    push_copy(L, lua_gettop(L));
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
  }
  const char* key = lua_tostring(L, 2);
  for (const char* b : kBlocked)
    if (std::strcmp(key, b) == 0) return luaL_error(L, "%s is not available in the sluice sandbox", key);
  return 0;
}

// __index of `steps`: a step with no recorded values reads as { values = {} }.
int steps_index(lua_State* L) {
  lua_createtable(L, 0, 1);
  lua_newtable(L);
  lua_setfield(L, -2, "values");
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// Runs once per state, protected.
int init_state(lua_State* L) {
  auto* s = static_cast<State*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  lua_pushlightuserdata(L, s);
  set_registry(L, &kStateKey);

  // The libraries go into the state's own globals, which sandboxed chunks never
  // see; luaopen_base also opens `coroutine`. io, os, package, debug, jit, ffi
  // and bit are never opened.
  const struct { const char* name; lua_CFunction open; } libs[] = {
      {"", luaopen_base}, {LUA_STRLIBNAME, luaopen_string}, {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math}};
  for (const auto& lib : libs) {
    lua_pushcfunction(L, lib.open);
    lua_pushstring(L, lib.name);
    lua_call(L, 1, 0);
  }

  // A script could otherwise reach the real `string` table through
  // getmetatable("").__index and patch it for every later call.
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  // pcall, xpcall, coroutine.resume wrappers (see kWrappers).
  if (luaL_loadbuffer(L, kWrappers, sizeof kWrappers - 1, "=sluice.sandbox") != 0) lua_error(L);
  lua_newtable(L);
  lua_setfenv(L, -2);  // they use only their upvalues
  lua_getglobal(L, "pcall");
  lua_getglobal(L, "xpcall");
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_remove(L, -2);
  lua_getglobal(L, "error");
  lua_pushcfunction(L, lua_aborted);
  lua_call(L, 5, 3);  // -> pcall', xpcall', resume'
  const int wrapped = lua_gettop(L) - 2;

  lua_createtable(L, 0, 20);  // the base functions
  const int base = lua_gettop(L);
  for (const char* name : kAllowedBase) {
    lua_getglobal(L, name);
    lua_setfield(L, base, name);  // nil (rawlen in LuaJIT) leaves no field
  }
  lua_pushvalue(L, wrapped);
  lua_setfield(L, base, "pcall");
  lua_pushvalue(L, wrapped + 1);
  lua_setfield(L, base, "xpcall");
  set_registry(L, &kBaseKey);

  lua_createtable(L, 0, 4);  // name -> the template each call copies
  const int tmpl = lua_gettop(L);
  for (const char* name : kAllowedLibs) {
    lua_getglobal(L, name);
    const int lib = lua_gettop(L);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, lib)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, lib + 1);
    }
    lua_remove(L, lib);
    lua_setfield(L, tmpl, name);
  }
  lua_getfield(L, tmpl, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");  // bytecode stays out of the sandbox
  lua_pop(L, 1);
  lua_getfield(L, tmpl, "coroutine");
  lua_pushvalue(L, wrapped + 2);
  lua_setfield(L, -2, "resume");
  lua_pop(L, 1);
  set_registry(L, &kLibsKey);
  lua_settop(L, 0);

  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, env_index);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  set_registry(L, &kEnvMetaKey);

  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, steps_index);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  set_registry(L, &kStepsMetaKey);

  lua_newtable(L);
  set_registry(L, &kChunksKey);
  lua_pushliteral(L, "time limit exceeded");
  set_registry(L, &kTimeMsgKey);
  lua_pushliteral(L, "memory limit exceeded");
  set_registry(L, &kMemMsgKey);
  return 0;
}

// Pushes a fresh sandbox environment: the allowed base functions, _G, and the
// metatable that supplies fresh library copies and names blocked globals.
void push_env(lua_State* L) {
  lua_createtable(L, 0, 24);
  const int env = lua_gettop(L);
  push_registry(L, &kBaseKey);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, env);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
  push_registry(L, &kEnvMetaKey);
  lua_setmetatable(L, env);
}

void push_value(lua_State* L, const dsl::Value& v) {
  luaL_checkstack(L, 4, "value nested too deeply");
  switch (v.type()) {
    case dsl::ValueType::String:
      lua_pushlstring(L, v.as_string().data(), v.as_string().size());
      return;
    case dsl::ValueType::Integer:
      lua_pushnumber(L, static_cast<lua_Number>(v.as_integer()));
      return;
    case dsl::ValueType::Float:
      lua_pushnumber(L, v.as_float());
      return;
    case dsl::ValueType::Boolean:
      lua_pushboolean(L, v.as_bool());
      return;
    case dsl::ValueType::Array: {
      const dsl::ValueArray& a = v.as_array();
      lua_createtable(L, static_cast<int>(a.size()), 0);
      for (size_t i = 0; i < a.size(); ++i) {
        push_value(L, a[i]);
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      return;
    }
    case dsl::ValueType::Table: {
      const dsl::ValueTable& t = v.as_table();
      lua_createtable(L, 0, static_cast<int>(t.size()));
      for (const auto& [key, item] : t) {
        lua_pushlstring(L, key.data(), key.size());
        push_value(L, item);
        lua_rawset(L, -3);
      }
      return;
    }
  }
}

// A value a step recorded (always text): booleans and numbers are recognised.
void push_step_value(lua_State* L, const std::string& text) {
  if (text == "true" || text == "false") {
    lua_pushboolean(L, text == "true");
    return;
  }
  double d = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, d);
  if (!text.empty() && ec == std::errc() && p == end && std::isfinite(d))
    lua_pushnumber(L, d);
  else
    lua_pushlstring(L, text.data(), text.size());
}

// One protected call into Lua: `body` runs under lua_pcall with on_error as the
// message handler, inside lua_cpcall so that even setting that up is protected.
struct Call {
  void (*body)(lua_State* L, void* ud) = nullptr;
  void* ud = nullptr;
  bool want_traceback = false;
  int status = 0;
  std::string message;
  std::string traceback;
};

int on_error(lua_State* L) {
  auto* c = static_cast<Call*>(lua_touserdata(L, lua_upvalueindex(1)));
  switch (lua_type(L, 1)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
      c->message = lua_tostring(L, 1);
      break;
    case LUA_TNIL:
      c->message = "nil";
      break;
    default:
      c->message = std::string("(error object is a ") + luaL_typename(L, 1) + " value)";
  }
  if (c->want_traceback) {
    luaL_traceback(L, L, nullptr, 1);
    c->traceback = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

int call_body(lua_State* L) {
  auto* c = static_cast<Call*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  c->body(L, c->ud);
  return 0;
}

int trampoline(lua_State* L) {
  auto* c = static_cast<Call*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  lua_pushlightuserdata(L, c);
  lua_pushcclosure(L, on_error, 1);
  lua_pushcfunction(L, call_body);
  lua_pushlightuserdata(L, c);
  c->status = lua_pcall(L, 1, 0, 1);
  if (c->status != 0 && c->message.empty()) {
    if (lua_type(L, -1) == LUA_TSTRING)
      c->message = lua_tostring(L, -1);
    else
      c->message = c->status == LUA_ERRMEM ? "not enough memory" : "error in error handling";
  }
  return 0;
}

// Runs `c` under `limits`. False when it failed; then c.message says why, and a
// limit that was hit wins over whatever error the script saw or raised.
bool run(State& s, const LuaLimits& limits, Call& c) {
  s.abort = Abort::None;
  s.gc_floor = 0;
  s.limit = limits.memory;
  const auto now = Clock::now();
  s.deadline = limits.time >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now)
                   ? Clock::time_point::max()
                   : now + limits.time;
  s.active = true;
  const int rc = lua_cpcall(s.L, trampoline, &c);
  s.active = false;
  s.limit = std::numeric_limits<uint64_t>::max();
  Abort why = s.abort;
  s.abort = Abort::None;
  if (rc != 0) {
    c.status = rc;
    if (c.message.empty())
      c.message = lua_type(s.L, -1) == LUA_TSTRING ? lua_tostring(s.L, -1) : "not enough memory";
  }
  lua_settop(s.L, 0);
  // A call that outlived its deadline inside C code still fails.
  if (why == Abort::None && Clock::now() > s.deadline) why = Abort::Time;
  if (why == Abort::Memory) lua_gc(s.L, LUA_GCCOLLECT, 0);
  if (why != Abort::None) {
    c.message = why == Abort::Time ? "time limit exceeded" : "memory limit exceeded";
    c.traceback.clear();
    return false;
  }
  return c.status == 0;
}

// Pushes the compiled chunk for `return (<expr>)`, from the cache when it is there.
void push_when_chunk(lua_State* L, State& s, const std::string& expr) {
  push_registry(L, &kChunksKey);
  lua_pushlstring(L, expr.data(), expr.size());
  lua_rawget(L, -2);
  if (lua_isfunction(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  int rc;
  {
    std::string chunk = "return (" + expr + "\n)";  // the newline lets a trailing -- comment work
    rc = luaL_loadbuffer(L, chunk.data(), chunk.size(), "=when");
  }
  if (rc != 0) lua_error(L);
  if (s.chunks >= kMaxChunks) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    set_registry(L, &kChunksKey);
    lua_replace(L, -3);
    s.chunks = 0;
  }
  lua_pushlstring(L, expr.data(), expr.size());
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  ++s.chunks;
  lua_remove(L, -2);
}

struct WhenCall {
  State* s;
  const std::string* expr;
  const WhenInput* in;
  bool result = false;
};

void when_body(lua_State* L, void* ud) {
  auto* w = static_cast<WhenCall*>(ud);
  const WhenInput& in = *w->in;
  push_env(L);
  const int env = lua_gettop(L);

  lua_createtable(L, 0, in.params ? static_cast<int>(in.params->size()) : 0);
  if (in.params) {
    for (const auto& [name, value] : *in.params) {
      push_value(L, value);
      lua_setfield(L, -2, name.c_str());
    }
  }
  lua_setfield(L, env, "params");

  lua_createtable(L, 0, in.matrix ? static_cast<int>(in.matrix->size()) : 0);
  if (in.matrix) {
    for (const auto& [key, value] : *in.matrix) {
      push_value(L, value);
      lua_setfield(L, -2, key.c_str());
    }
  }
  lua_setfield(L, env, "matrix");

  lua_createtable(L, 0, in.step_values ? static_cast<int>(in.step_values->size()) : 0);
  if (in.step_values) {
    for (const auto& [step, values] : *in.step_values) {
      lua_createtable(L, 0, 1);
      lua_createtable(L, 0, static_cast<int>(values.size()));
      for (const auto& [key, text] : values) {
        push_step_value(L, text);
        lua_setfield(L, -2, key.c_str());
      }
      lua_setfield(L, -2, "values");
      lua_setfield(L, -2, step.c_str());
    }
  }
  push_registry(L, &kStepsMetaKey);
  lua_setmetatable(L, -2);
  lua_setfield(L, env, "steps");

  push_when_chunk(L, *w->s, *w->expr);
  lua_pushvalue(L, env);
  lua_setfenv(L, -2);
  lua_call(L, 0, 1);
  w->result = lua_toboolean(L, -1);
}

// "when:1: attempt to ..." -> "when: attempt to ...": the chunk is the
// expression itself, so its name and line say nothing.
std::string when_message(std::string m) {
  for (;;) {
    if (m.rfind("when:", 0) != 0) break;
    size_t i = 5;
    while (i < m.size() && std::isdigit(static_cast<unsigned char>(m[i]))) ++i;
    if (i == 5 || m.compare(i, 2, ": ") != 0) break;
    m.erase(0, i + 2);
  }
  return "when: " + m;
}

}  // namespace

LuaHost::LuaHost() : s_(std::make_unique<State>()) {
  State& s = *s_;
  // Debian's LuaJIT (GC64 on x86-64) accepts a custom allocator; builds that do
  // not return NULL here, and then the hook checks the GC's own count instead.
  s.L = lua_newstate(counting_alloc, &s);
  s.counting = s.L != nullptr;
  if (!s.L) s.L = luaL_newstate();
  if (!s.L) throw std::bad_alloc();
  // The hook is never called from JIT-compiled code, so a compiled
  // `while true do end` would never stop: sandboxed code runs interpreted.
  luaJIT_setmode(s.L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);  // fails only in builds without a JIT
  if (lua_cpcall(s.L, init_state, &s) != 0) {
    std::string msg = lua_type(s.L, -1) == LUA_TSTRING ? lua_tostring(s.L, -1) : "unknown error";
    lua_close(s.L);
    throw std::runtime_error("cannot set up the Lua host: " + msg);
  }
  lua_settop(s.L, 0);
  lua_sethook(s.L, count_hook, LUA_MASKCOUNT, kHookEvery);
}

LuaHost::~LuaHost() {
  if (s_) lua_close(s_->L);
}

LuaHost::LuaHost(LuaHost&&) noexcept = default;
LuaHost& LuaHost::operator=(LuaHost&& other) noexcept {
  if (this != &other) {
    if (s_) lua_close(s_->L);
    s_ = std::move(other.s_);
  }
  return *this;
}

uint64_t LuaHost::memory_used() const { return s_->used(); }

bool LuaHost::exact_memory_limit() const { return s_->counting; }

bool LuaHost::eval_when(const std::string& expr, const WhenInput& in, const LuaLimits& limits, bool& result,
                        std::string& error) {
  WhenCall w{s_.get(), &expr, &in};
  Call c;
  c.body = when_body;
  c.ud = &w;
  if (!run(*s_, limits, c)) {
    error = when_message(std::move(c.message));
    return false;
  }
  result = w.result;
  return true;
}

}  // namespace sluice::engine
