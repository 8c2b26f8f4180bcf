#include "engine/lua_host.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <sys/stat.h>

#include <lua.hpp>

#include "engine/lua_stdlib.h"
#include "stdlib/embedded.h"

namespace sluice::engine {

namespace {

using Clock = std::chrono::steady_clock;

// VM instructions between two checks of the limits. The check costs one clock
// read; 10,000 instructions take some tens of microseconds in the interpreter.
constexpr int kHookEvery = 10'000;
// Compiled `when` chunks kept per host (keyed by expression text); the cache is
// dropped and rebuilt when full.
constexpr size_t kMaxChunks = 256;

// Compiled step chunks kept per host (keyed by chunk name); dropped and rebuilt when full.
constexpr size_t kMaxStepChunks = 256;

// Registry keys: the addresses of these objects, as light userdata.
char kStateKey, kOnErrorKey, kCallBodyKey, kCtxMetaKey, kEnvMetaKey, kStepEnvMetaKey, kStepsMetaKey, kChunksKey, kTimeMsgKey, kMemMsgKey, kCancelMsgKey, kCurrentEnvKey,
    kLoadedKey, kRandomSeedKey, kStepChunksKey, kStdlibChunksKey;

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
// A Lua step's sandbox adds `os` (time, clock, date only), `sluice`, and the
// host's own load, loadstring (text only), require (stdlib and plugin modules)
// and print (to the step log); the rest of kBlocked stays blocked.
constexpr const char* kStepBlocked[] = {
    "io", "package", "ffi", "jit", "debug", "dofile", "loadfile", "collectgarbage", "getfenv", "setfenv",
    "module", "newproxy", "gcinfo", "rawset", "bit"};
// Members of the step's library copies that are not there; reading one names it.
constexpr const char* kOsBlocked[] = {"execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale"};
constexpr const char* kStringBlocked[] = {"dump"};

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

enum class Abort { None, Time, Memory, Cancel };

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
  const std::atomic<bool>* cancel = nullptr;  // the current call's cancel flag
  Abort abort = Abort::None;
  uint64_t gc_floor = 0;  // bytes held after the last full GC the hook ran
  size_t chunks = 0;      // entries in the chunk cache
  lua::StepContext* step = nullptr;  // the step run_step is running, if any
  void* call = nullptr;              // the Call being run (see run())
  // Step chunks compiled from files: what the file looked like when compiled,
  // so an unchanged file is not compiled again.
  struct FileStamp {
    int64_t mtime_ns = 0, size = 0;
    uint64_t ino = 0;
  };
  std::unordered_map<std::string, FileStamp> step_files;  // chunk name -> stamp
  size_t step_chunks = 0;

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

int on_error(lua_State* L);
int call_body(lua_State* L);
int ctx_index(lua_State* L);

[[noreturn]] void raise_abort(lua_State* L, const State* s) {
  // Kept in the registry since start-up, so pushing one allocates nothing.
  push_registry(L, s->abort == Abort::Time ? &kTimeMsgKey : s->abort == Abort::Cancel ? &kCancelMsgKey : &kMemMsgKey);
  lua_error(L);
  std::abort();  // lua_error does not return
}

// Hooks are global to a LuaJIT state (not per coroutine as in PUC Lua 5.1), so
// this one hook also runs inside every coroutine.
void count_hook(lua_State* L, lua_Debug*) {
  State* s = state_of(L);
  if (!s || !s->active) return;
  if (s->abort == Abort::None) {
    if (s->cancel && s->cancel->load(std::memory_order_relaxed)) {
      s->abort = Abort::Cancel;
    } else if (Clock::now() >= s->deadline) {
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

// Pushes a fresh copy of the table at `index`: nested tables are copied too
// (templates have no cycles), and each copy gets its original's metatable
// (which is protected, so a script cannot change it for everyone).
void push_copy(lua_State* L, int index) {
  luaL_checkstack(L, 6, "library nested too deeply");
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    ++n;
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, n);
  const int copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, index)) {
    lua_pushvalue(L, -2);
    if (lua_istable(L, -2)) {
      push_copy(L, lua_gettop(L) - 1);
    } else {
      lua_pushvalue(L, -2);
    }
    lua_rawset(L, copy);
    lua_pop(L, 1);
  }
  if (lua_getmetatable(L, index)) lua_setmetatable(L, copy);
}

// The running call's global environment (a table), or anything else outside
// a call.
void push_current_env_raw(lua_State* L) { push_registry(L, &kCurrentEnvKey); }

// __index of the shared base table behind every sandbox environment (base,
// key); upvalues: the library templates and the set of blocked names. An
// allowed library is copied on first use and kept in the running call's
// environment for the rest of the call; blocked names fail loudly; other
// unknown names are nil.
int env_index(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (lua_istable(L, -1)) {
    push_copy(L, lua_gettop(L));
    push_current_env_raw(L);
    if (lua_istable(L, -1)) {
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -3);
      lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2));
  if (lua_toboolean(L, -1)) return luaL_error(L, "%s is not available in the sluice sandbox", lua_tostring(L, 2));
  return 0;
}

// __index of a library copy whose missing members are named when read
// (os.execute, string.dump); upvalues: the library's name, its blocked set.
int member_index(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2));
  if (lua_toboolean(L, -1))
    return luaL_error(L, "%s.%s is not available in the sluice sandbox", lua_tostring(L, lua_upvalueindex(1)),
                      lua_tostring(L, 2));
  return 0;
}

// __index of a copied namespace whose sub-tables are copied only when first
// read (the sluice module: a step that calls sluice.metric does not pay for
// copying sluice.stats); upvalue: the sub-table templates.
int lazy_member(lua_State* L) {
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_istable(L, -1)) return 0;
  push_copy(L, lua_gettop(L));
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// Moves the table-valued fields of the table at `index` into a side table
// that lazy_member copies from on demand.
void make_lazy(lua_State* L, int index) {
  lua_newtable(L);
  const int subs = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lua_istable(L, -1)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, subs);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pushnil(L);
  while (lua_next(L, subs)) {  // now drop them from the template itself
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, index);
  }
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, subs);
  lua_pushcclosure(L, lazy_member, 1);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, index);
  lua_pop(L, 1);
}

template <size_t N>
void push_name_set(lua_State* L, const char* const (&names)[N]) {
  lua_createtable(L, 0, static_cast<int>(N));
  for (const char* name : names) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, name);
  }
}

// Pushes a protected metatable whose __index is member_index for `lib`.
template <size_t N>
void push_member_meta(lua_State* L, const char* lib, const char* const (&blocked)[N]) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, lib);
  push_name_set(L, blocked);
  lua_pushcclosure(L, member_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
}

// Pushes the protected metatable of a sandbox environment: __index is the
// base table at `base` (shared by every call, unreachable from scripts),
// whose own metatable supplies library copies from the templates at `libs`
// and names the blocked globals.
template <size_t N>
void push_env_meta(lua_State* L, int base, int libs, const char* const (&blocked)[N]) {
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, libs);
  push_name_set(L, blocked);
  lua_pushcclosure(L, env_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, base);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, base);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
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

// The running step's environment (set by run_step for the call).
void push_current_env(lua_State* L) {
  push_registry(L, &kCurrentEnvKey);
  if (!lua_istable(L, -1)) luaL_error(L, "not available outside a Lua step");
}

// Compiles text only: bytecode never enters the sandbox. Pushes the function,
// or nil and the syntax error (as load does); bytecode is an error.
int load_text(lua_State* L, const char* fn, const char* text, size_t len, const char* chunkname, int env_index) {
  if (len > 0 && text[0] == LUA_SIGNATURE[0])
    return luaL_error(L, "%s: bytecode is not allowed in the sluice sandbox (text chunks only)", fn);
  if (luaL_loadbufferx(L, text, len, chunkname, "t") != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (env_index)
    lua_pushvalue(L, env_index);
  else
    push_current_env(L);
  lua_setfenv(L, -2);
  return 1;
}

// load(chunk [, chunkname [, mode [, env]]]): chunk is a string or a function
// returning pieces; mode must allow text; env defaults to the step's globals.
int sandbox_load(lua_State* L) {
  const char* chunkname = luaL_optstring(L, 2, nullptr);
  const char* mode = luaL_optstring(L, 3, "bt");
  if (!std::strchr(mode, 't')) return luaL_error(L, "load: mode '%s' is not allowed in the sluice sandbox (text chunks only)", mode);
  int env = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    env = 4;
  }
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len = 0;
    const char* text = lua_tolstring(L, 1, &len);
    return load_text(L, "load", text, len, chunkname ? chunkname : text, env);
  }
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TSTRING && lua_objlen(L, -1) == 0)) {
      lua_pop(L, 1);
      break;
    }
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "load: reader function must return a string");
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len = 0;
  const char* text = lua_tolstring(L, -1, &len);
  return load_text(L, "load", text, len, chunkname ? chunkname : "=(load)", env);
}

int sandbox_loadstring(lua_State* L) {
  size_t len = 0;
  const char* text = luaL_checklstring(L, 1, &len);
  return load_text(L, "loadstring", text, len, luaL_optstring(L, 2, text), 0);
}

int sandbox_print(lua_State* L) {
  if (lua::StepContext* c = lua::current_step(L)) lua::add_log(*c, LuaLogLine::Level::Info, lua::join_args(L, 1, "\t"));
  return 0;
}

bool valid_module_name(const char* name) {
  // a, a.b, a_b.c2: dots become directory separators below the plugin folder
  if (!*name || *name == '.') return false;
  char prev = '.';
  for (const char* p = name; *p; ++p) {
    const char c = *p;
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return false;
    }
    prev = c;
  }
  return prev != '.';
}

// Pushes the module `name` from the plugin folder, or nothing (returns false)
// when there is no such file.
bool require_plugin_module(lua_State* L, const std::string& dir, const char* name) {
  std::string rel = name;
  for (char& ch : rel)
    if (ch == '.') ch = '/';
  const std::string file = dir + "/" + rel + ".lua";
  std::string text;
  {
    char* real_dir = ::realpath(dir.c_str(), nullptr);
    char* real_file = ::realpath(file.c_str(), nullptr);
    const std::string rd = real_dir ? real_dir : "", rf = real_file ? real_file : "";
    std::free(real_dir);
    std::free(real_file);
    if (rd.empty() || rf.empty()) return false;
    if (rf.compare(0, rd.size() + 1, rd + "/") != 0) luaL_error(L, "require: module '%s' leads outside the plugin folder", name);
    std::ifstream f(rf, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  const std::string chunkname = "@" + file;
  if (!text.empty() && text[0] == LUA_SIGNATURE[0])
    luaL_error(L, "require: module '%s' is bytecode; only text modules are allowed", name);
  if (luaL_loadbufferx(L, text.data(), text.size(), chunkname.c_str(), "t") != 0) lua_error(L);
  push_current_env(L);
  lua_setfenv(L, -2);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  return true;
}

// Pushes the compiled chunk of the stdlib module `name` (the Lua files of
// stdlib/, embedded in the binary), compiled once per host.
void push_stdlib_chunk(lua_State* L, const char* name, const stdlib::EmbeddedFile& f) {
  push_registry(L, &kStdlibChunksKey);
  lua_getfield(L, -1, name);
  if (lua_isfunction(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  const std::string chunkname = "@stdlib/" + std::string(f.path);
  if (luaL_loadbufferx(L, f.source.data(), f.source.size(), chunkname.c_str(), "t") != 0) lua_error(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  lua_remove(L, -2);
}

// require(name): the stdlib modules (sluice, sluice.json, sluice.csv, ...,
// and the Lua modules of stdlib/ such as sluice.metrics),
// then, for a plugin, the modules in its folder. Nothing else: no
// package.path, no C modules, and not the libraries (they are globals; the
// blocked ones such as os, io, ffi stay unreachable).
int sandbox_require(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  if (!lua::current_step(L)) return luaL_error(L, "require: not available outside a Lua step");
  push_registry(L, &kLoadedKey);  // 2: this step's loaded modules, made on first use
  if (!lua_istable(L, 2)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    set_registry(L, &kLoadedKey);
  }
  lua_getfield(L, 2, name);
  if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) return luaL_error(L, "require: module '%s' requires itself (a loop)", name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  push_current_env(L);  // 3
  if (std::strcmp(name, "sluice") == 0) {
    lua_getfield(L, 3, name);
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
  }
  if (std::strncmp(name, "sluice.", 7) == 0) {
    lua_getfield(L, 3, "sluice");
    lua_getfield(L, -1, name + 7);
    if (lua_istable(L, -1)) {
      lua_pushvalue(L, -1);
      lua_setfield(L, 2, name);
      return 1;
    }
    lua_settop(L, 3);
    if (const stdlib::EmbeddedFile* f = stdlib::find_module(name)) {
      lua_pushlightuserdata(L, &kLoadedKey);  // "loading" marker
      lua_setfield(L, 2, name);
      push_stdlib_chunk(L, name, *f);
      lua_pushvalue(L, 3);
      lua_setfenv(L, -2);
      lua_pushstring(L, name);
      lua_call(L, 1, 1);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
      }
      lua_pushvalue(L, -1);
      lua_setfield(L, 2, name);
      return 1;
    }
  }
  lua::StepContext* c = lua::current_step(L);
  if (c && !c->in->plugin_dir.empty() && valid_module_name(name)) {
    lua_pushlightuserdata(L, &kLoadedKey);  // "loading" marker
    lua_setfield(L, 2, name);
    if (require_plugin_module(L, c->in->plugin_dir, name)) {
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
      }
      lua_pushvalue(L, -1);
      lua_setfield(L, 2, name);
      return 1;
    }
    lua_pushnil(L);
    lua_setfield(L, 2, name);
  }
  return luaL_error(L, "require: module '%s' is not available in the sluice sandbox", name);
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
  lua_getfield(L, tmpl, "math");
  lua_getfield(L, -1, "randomseed");
  set_registry(L, &kRandomSeedKey);  // run_step seeds every step; the sandbox may reseed its own runs
  lua_pop(L, 1);

  // `when` expressions: the base functions and the libraries above.
  push_env_meta(L, base, tmpl, kBlocked);
  set_registry(L, &kEnvMetaKey);

  // Lua steps: the same, plus os (time, clock, date), sluice, and the host's
  // load, loadstring, require and print. Library copies name their missing
  // members (string.dump, os.execute).
  lua_createtable(L, 0, 8);
  const int step_tmpl = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, tmpl)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    push_copy(L, lua_gettop(L));
    lua_remove(L, -2);
    lua_rawset(L, step_tmpl);
  }
  lua_getfield(L, step_tmpl, "string");
  push_member_meta(L, "string", kStringBlocked);
  lua_setmetatable(L, -2);
  lua_pop(L, 1);

  // os: only time, clock and date. The library is opened into a scratch table
  // that is dropped again; only those three functions are kept.
  lua_pushcfunction(L, luaopen_os);
  lua_pushstring(L, LUA_OSLIBNAME);
  lua_call(L, 1, 1);
  lua_createtable(L, 0, 3);
  for (const char* name : {"time", "clock", "date"}) {
    lua_getfield(L, -2, name);
    lua_setfield(L, -2, name);
  }
  push_member_meta(L, "os", kOsBlocked);
  lua_setmetatable(L, -2);
  lua_setfield(L, step_tmpl, "os");
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setglobal(L, LUA_OSLIBNAME);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    lua_setfield(L, -2, LUA_OSLIBNAME);
  }
  lua_pop(L, 1);

  lua::push_sluice_template(L);
  make_lazy(L, lua_gettop(L));
  lua_setfield(L, step_tmpl, "sluice");

  lua_createtable(L, 0, 24);
  const int step_base = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, base)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, step_base);
  }
  const struct { const char* name; lua_CFunction fn; } step_fns[] = {
      {"load", sandbox_load}, {"loadstring", sandbox_loadstring}, {"require", sandbox_require}, {"print", sandbox_print}};
  for (const auto& f : step_fns) {
    lua_pushcfunction(L, f.fn);
    lua_setfield(L, step_base, f.name);
  }
  push_env_meta(L, step_base, step_tmpl, kStepBlocked);
  set_registry(L, &kStepEnvMetaKey);
  lua_settop(L, 0);

  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, steps_index);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  set_registry(L, &kStepsMetaKey);

  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, ctx_index);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  set_registry(L, &kCtxMetaKey);
  lua_pushcfunction(L, on_error);
  set_registry(L, &kOnErrorKey);
  lua_pushcfunction(L, call_body);
  set_registry(L, &kCallBodyKey);
  lua_newtable(L);
  set_registry(L, &kChunksKey);
  lua_newtable(L);
  set_registry(L, &kStepChunksKey);
  lua_newtable(L);
  set_registry(L, &kStdlibChunksKey);
  lua_pushboolean(L, 0);  // run_step sets and resets these; the slots must exist
  set_registry(L, &kCurrentEnvKey);
  lua_pushboolean(L, 0);
  set_registry(L, &kLoadedKey);
  lua_pushliteral(L, "time limit exceeded");
  set_registry(L, &kTimeMsgKey);
  lua_pushliteral(L, "memory limit exceeded");
  set_registry(L, &kMemMsgKey);
  lua_pushliteral(L, "cancelled");
  set_registry(L, &kCancelMsgKey);
  return 0;
}

// Pushes a fresh sandbox environment for `meta` (kEnvMetaKey or
// kStepEnvMetaKey) and makes it the running call's: an empty table with _G,
// reading the base functions through its metatable. Library copies and the
// script's own globals land in it; nothing is shared with another call.
void push_env(lua_State* L, void* meta = &kEnvMetaKey) {
  lua_createtable(L, 0, 4);
  push_registry(L, meta);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  lua_pushvalue(L, -1);
  set_registry(L, &kCurrentEnvKey);
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
  State* s = state_of(L);
  auto* c = static_cast<Call*>(s->call);
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
  if (c->want_traceback && s->abort != Abort::Memory) {  // a traceback needs memory
    luaL_traceback(L, L, nullptr, 1);
    c->traceback = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

int call_body(lua_State* L) {
  auto* c = static_cast<Call*>(state_of(L)->call);
  lua_settop(L, 0);
  c->body(L, c->ud);
  return 0;
}

// The two functions are made once (init_state): pushing a C function in
// LuaJIT allocates a closure, which would cost every call.
int trampoline(lua_State* L) {
  auto* c = static_cast<Call*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  push_registry(L, &kOnErrorKey);
  push_registry(L, &kCallBodyKey);
  c->status = lua_pcall(L, 0, 0, 1);
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
bool run(State& s, const LuaLimits& limits, Call& c, Clock::time_point* deadline = nullptr) {
  s.abort = Abort::None;
  s.gc_floor = 0;
  s.limit = limits.memory;
  const auto now = Clock::now();
  s.deadline = limits.time >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now)
                   ? Clock::time_point::max()
                   : now + limits.time;
  if (deadline) *deadline = s.deadline;
  s.cancel = limits.cancel;
  s.active = true;
  s.call = &c;
  const int rc = lua_cpcall(s.L, trampoline, &c);
  s.call = nullptr;
  s.active = false;
  s.cancel = nullptr;
  s.limit = std::numeric_limits<uint64_t>::max();
  Abort why = s.abort;
  s.abort = Abort::None;
  if (rc != 0) {
    c.status = rc;
    if (c.message.empty())
      c.message = lua_type(s.L, -1) == LUA_TSTRING ? lua_tostring(s.L, -1) : "not enough memory";
  }
  lua_settop(s.L, 0);
  lua_pushboolean(s.L, 0);  // the call's environment is garbage now (the slot exists: no allocation)
  set_registry(s.L, &kCurrentEnvKey);
  // A call that outlived its deadline inside C code still fails.
  if (why == Abort::None && Clock::now() > s.deadline) why = Abort::Time;
  if (why == Abort::Memory) lua_gc(s.L, LUA_GCCOLLECT, 0);
  if (why != Abort::None) {
    c.message = why == Abort::Time ? "time limit exceeded" : why == Abort::Cancel ? "cancelled" : "memory limit exceeded";
    return false;
  }
  return c.status == 0;
}

// Pushes the compiled chunk for `return (<expr>)`, from the cache when it is
// there. `label` names the chunk in messages ("when", "gate"), so it is part
// of the cache key.
void push_when_chunk(lua_State* L, State& s, const std::string& expr, const std::string& label = "when") {
  const std::string key = label == "when" ? expr : label + '\0' + expr;
  push_registry(L, &kChunksKey);
  lua_pushlstring(L, key.data(), key.size());
  lua_rawget(L, -2);
  if (lua_isfunction(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  int rc;
  {
    std::string chunk = "return (" + expr + "\n)";  // the newline lets a trailing -- comment work
    rc = luaL_loadbuffer(L, chunk.data(), chunk.size(), ("=" + label).c_str());
  }
  if (rc != 0) lua_error(L);
  if (s.chunks >= kMaxChunks) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    set_registry(L, &kChunksKey);
    lua_replace(L, -3);
    s.chunks = 0;
  }
  lua_pushlstring(L, key.data(), key.size());
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
std::string when_message(std::string m, const std::string& label = "when") {
  const std::string prefix = label + ":";
  for (;;) {
    if (m.rfind(prefix, 0) != 0) break;
    size_t i = prefix.size();
    while (i < m.size() && std::isdigit(static_cast<unsigned char>(m[i]))) ++i;
    if (i == prefix.size() || m.compare(i, 2, ": ") != 0) break;
    m.erase(0, i + 2);
  }
  return label + ": " + m;
}

struct ExprCall {
  State* s;
  const std::string* expr;
  const std::map<std::string, dsl::Value>* globals;
  const std::string* label;
  bool result = false;
};

void expr_body(lua_State* L, void* ud) {
  auto* x = static_cast<ExprCall*>(ud);
  push_env(L);
  const int env = lua_gettop(L);
  for (const auto& [name, value] : *x->globals) {
    push_value(L, value);
    lua_setfield(L, env, name.c_str());
  }
  push_when_chunk(L, *x->s, *x->expr, *x->label);
  lua_pushvalue(L, env);
  lua_setfenv(L, -2);
  lua_call(L, 0, 1);
  x->result = lua_toboolean(L, -1);
}

// --- Lua steps ---

uint64_t fnv1a(uint64_t h, const std::string& text) {
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return (h ^ 0xff) * 1099511628211ull;  // a separator, so ("ab","c") != ("a","bc")
}

void push_text_map(lua_State* L, const std::map<std::string, std::string>& m) {
  lua_createtable(L, 0, static_cast<int>(m.size()));
  for (const auto& [key, text] : m) {
    lua_pushlstring(L, key.data(), key.size());
    lua_pushlstring(L, text.data(), text.size());
    lua_rawset(L, -3);
  }
}

void push_bindings(lua_State* L, const std::vector<std::pair<std::string, dsl::Value>>& matrix) {
  lua_createtable(L, 0, static_cast<int>(matrix.size()));
  for (const auto& [key, value] : matrix) {
    lua_pushlstring(L, key.data(), key.size());
    push_value(L, value);
    lua_rawset(L, -3);
  }
}

void push_step_values(lua_State* L, const std::map<std::string, std::string>& values) {
  lua_createtable(L, 0, static_cast<int>(values.size()));
  for (const auto& [key, text] : values) {
    lua_pushlstring(L, key.data(), key.size());
    push_step_value(L, text);
    lua_rawset(L, -3);
  }
}

// Pushes the value of ctx.<key> for the running step, or nothing (returns
// false) for a key ctx does not have. Fresh tables every time: nothing a step
// changes in them is seen by anyone else.
bool push_ctx_field(lua_State* L, const LuaStepInput& in, const char* key) {
  if (std::strcmp(key, "params") == 0) {
    lua_createtable(L, 0, static_cast<int>(in.params.size()));
    for (const auto& [name, value] : in.params) {
      lua_pushlstring(L, name.data(), name.size());
      push_value(L, value);
      lua_rawset(L, -3);
    }
  } else if (std::strcmp(key, "inputs") == 0) {
    push_text_map(L, in.inputs);
  } else if (std::strcmp(key, "outputs") == 0) {
    push_text_map(L, in.outputs);
  } else if (std::strcmp(key, "matrix") == 0) {
    push_bindings(L, in.matrix);
  } else if (std::strcmp(key, "run") == 0) {
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, in.run.id.data(), in.run.id.size());
    lua_setfield(L, -2, "id");
    lua_pushlstring(L, in.run.step.data(), in.run.step.size());
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, in.run.attempt);
    lua_setfield(L, -2, "attempt");
  } else if (std::strcmp(key, "steps") == 0) {
    lua_createtable(L, 0, static_cast<int>(in.steps.size()));
    for (const auto& [name, up] : in.steps) {
      lua_pushlstring(L, name.data(), name.size());
      if (up.matrix) {
        lua_createtable(L, static_cast<int>(up.instances.size()), 0);
        int i = 0;
        for (const LuaUpstream::Instance& inst : up.instances) {
          lua_createtable(L, 0, 2);
          push_bindings(L, inst.matrix);
          lua_setfield(L, -2, "matrix");
          push_step_values(L, inst.values);
          lua_setfield(L, -2, "values");
          lua_rawseti(L, -2, ++i);
        }
      } else {
        lua_createtable(L, 0, 1);
        push_step_values(L, up.values);
        lua_setfield(L, -2, "values");
      }
      lua_rawset(L, -3);
    }
  } else if (std::strcmp(key, "workdir") == 0) {
    lua_pushlstring(L, in.workdir.data(), in.workdir.size());
  } else {
    return false;
  }
  return true;
}

// __index of ctx (ctx, key): a field is built when first read and then kept
// in ctx, so a step that reads only ctx.params pays only for ctx.params.
int ctx_index(lua_State* L) {
  const lua::StepContext* c = lua::current_step(L);
  if (!c || lua_type(L, 2) != LUA_TSTRING || !push_ctx_field(L, *c->in, lua_tostring(L, 2))) return 0;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// Pushes a fresh, empty ctx whose fields appear as they are read. LuaJIT
// ignores __pairs, so pairs(ctx) lists only the fields read so far.
void push_ctx(lua_State* L) {
  lua_createtable(L, 0, 8);
  push_registry(L, &kCtxMetaKey);
  lua_setmetatable(L, -2);
}

struct StepCall {
  State* s;
  const LuaStepInput* in;
  LuaStepResult* out;
  std::string name;  // the chunk's display name
};

// Pushes the step's compiled chunk: from the per-host cache while the file (or
// the inline text) is unchanged, else compiled now (a syntax error raises
// "name:line: message").
void push_step_chunk(lua_State* L, StepCall& sc) {
  State& s = *sc.s;
  const LuaStepInput& in = *sc.in;
  const bool file = !in.script_path.empty();
  State::FileStamp stamp;
  if (file) {
    struct stat st {};
    if (::stat(in.script_path.c_str(), &st) != 0)
      luaL_error(L, "%s: cannot read the script %s: %s", sc.name.c_str(), in.script_path.c_str(), std::strerror(errno));
    stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.size = st.st_size;
    stamp.ino = st.st_ino;
  }
  push_registry(L, &kStepChunksKey);
  const int cache = lua_gettop(L);
  lua_pushlstring(L, sc.name.data(), sc.name.size());
  lua_rawget(L, cache);  // { text = ..., fn = ... } or nil
  if (lua_istable(L, -1)) {
    bool hit = false;
    if (file) {
      auto it = s.step_files.find(sc.name);
      hit = it != s.step_files.end() && it->second.mtime_ns == stamp.mtime_ns && it->second.size == stamp.size &&
            it->second.ino == stamp.ino;
    } else {
      lua_getfield(L, -1, "text");
      size_t len = 0;
      const char* text = lua_tolstring(L, -1, &len);
      hit = text && len == in.code.size() && std::memcmp(text, in.code.data(), len) == 0;
      lua_pop(L, 1);
    }
    if (hit) {
      lua_getfield(L, -1, "fn");
      lua_replace(L, cache);
      lua_settop(L, cache);
      return;
    }
  }
  lua_settop(L, cache);

  std::string text;
  if (file) {
    std::ifstream f(in.script_path, std::ios::binary);
    std::ostringstream ss;
    if (f) ss << f.rdbuf();
    if (!f) luaL_error(L, "%s: cannot read the script %s", sc.name.c_str(), in.script_path.c_str());
    text = ss.str();
  }
  const std::string& source = file ? text : in.code;
  const std::string chunkname = (file ? "@" : "=") + sc.name;
  if (!source.empty() && source[0] == LUA_SIGNATURE[0])
    luaL_error(L, "%s: the script is bytecode; only text chunks are allowed", sc.name.c_str());
  if (luaL_loadbufferx(L, source.data(), source.size(), chunkname.c_str(), "t") != 0) lua_error(L);
  if (s.step_chunks >= kMaxStepChunks) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    set_registry(L, &kStepChunksKey);
    lua_replace(L, cache);
    s.step_chunks = 0;
    s.step_files.clear();
  }
  lua_pushlstring(L, sc.name.data(), sc.name.size());
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "fn");
  if (!file) {
    lua_pushlstring(L, in.code.data(), in.code.size());
    lua_setfield(L, -2, "text");
  }
  lua_rawset(L, cache);
  ++s.step_chunks;
  if (file) s.step_files[sc.name] = stamp;
  lua_replace(L, cache);
}

bool is_value_name(const char* k, size_t len) {
  if (len == 0 || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
  for (size_t i = 0; i < len; ++i) {
    const unsigned char c = static_cast<unsigned char>(k[i]);
    if (!std::isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// The chunk's (or the plugin action's) return value (at `index`) -> the step's values.
void collect_values(lua_State* L, StepCall& sc, int index) {
  const char* name = sc.name.c_str();
  if (lua_isnoneornil(L, index)) return;
  if (!lua_istable(L, index)) {
    if (!sc.in->action.empty())
      luaL_error(L, "%s: action '%s' returns a table of values (or nothing), not a %s", name, sc.in->action.c_str(),
                 luaL_typename(L, index));
    luaL_error(L, "%s: a Lua step returns a table of values (or nothing), not a %s", name, luaL_typename(L, index));
  }
  auto& values = sc.out->values;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pushvalue(L, -2);
      const char* key = lua_tostring(L, -1);  // nil/boolean/table keys: no text
      luaL_error(L, "%s: returned a value under the %s key %s; step values need names", name, luaL_typename(L, -3),
                 key ? key : "?");
    }
    size_t klen = 0;
    const char* key = lua_tolstring(L, -2, &klen);
    if (!is_value_name(key, klen))
      luaL_error(L, "%s: value name '%s' is not valid (letters, digits, '_', '-', '.'; not starting with a digit)", name,
                 key);
    std::string& slot = values[std::string(key, klen)];
    switch (lua_type(L, -1)) {
      case LUA_TSTRING: {
        size_t len = 0;
        const char* text = lua_tolstring(L, -1, &len);
        slot.assign(text, len);
        break;
      }
      case LUA_TNUMBER:
        slot = lua::format_number(lua_tonumber(L, -1));
        break;
      case LUA_TBOOLEAN:
        slot = lua_toboolean(L, -1) ? "true" : "false";
        break;
      default:
        luaL_error(L, "%s: value '%s' is a %s; step values must be strings, numbers or booleans", name, key,
                   luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
}

void step_body(lua_State* L, void* ud) {
  auto* sc = static_cast<StepCall*>(ud);
  const LuaStepInput& in = *sc->in;
  push_step_chunk(L, *sc);  // 1
  push_env(L, &kStepEnvMetaKey);  // 2
  push_ctx(L);  // 3
  lua_pushvalue(L, 3);
  lua_setfield(L, 2, "ctx");

  // math.random: the same sequence for the same run, step and matrix instance.
  uint64_t h = fnv1a(fnv1a(14695981039346656037ull, in.run.id), in.run.step);
  for (const auto& [key, value] : in.matrix) h = fnv1a(fnv1a(h, key), value.to_text());
  push_registry(L, &kRandomSeedKey);
  lua_pushnumber(L, static_cast<double>(h >> 11));  // < 2^53: exact
  lua_call(L, 1, 0);

  lua_pushvalue(L, 2);
  lua_setfenv(L, 1);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 3);
  lua_call(L, 1, 1);  // the chunk gets ctx as `...` too
  if (!in.action.empty()) {
    // A plugin's init.lua returned its table of actions: call the one asked for.
    const int actions = lua_gettop(L);
    if (!lua_istable(L, actions))
      luaL_error(L, "%s: a plugin's init.lua returns a table of actions, not a %s", sc->name.c_str(),
                 luaL_typename(L, actions));
    lua_getfield(L, actions, in.action.c_str());
    if (!lua_isfunction(L, -1))
      luaL_error(L, "%s: action '%s' is not a function in the table init.lua returns (found %s)", sc->name.c_str(),
                 in.action.c_str(), luaL_typename(L, -1));
    lua_pushvalue(L, 3);
    push_value(L, in.args);
    lua_call(L, 2, 1);
  }
  collect_values(L, *sc, lua_gettop(L));
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

LuaStepResult LuaHost::run_step(const LuaStepInput& in) {
  LuaStepResult out;
  State& s = *s_;
  lua::StepContext ctx;
  ctx.in = &in;
  ctx.out = &out;
  ctx.memory_limit = in.limits.memory;
  StepCall sc{&s, &in, &out, in.chunk_name};
  if (sc.name.empty()) sc.name = in.script_path.empty() ? "lua_inline:" + in.run.step : in.script_path;
  Call c;
  c.body = step_body;
  c.ud = &sc;
  c.want_traceback = true;
  s.step = &ctx;
  out.ok = run(s, in.limits, c, &ctx.deadline);
  s.step = nullptr;
  lua_pushboolean(s.L, 0);  // the step's modules (the slot exists: no allocation)
  set_registry(s.L, &kLoadedKey);
  if (ctx.log_dropped) {
    LuaLogLine line{LuaLogLine::Level::Warn, std::to_string(ctx.log_dropped) + " log lines dropped (over " +
                                                 std::to_string(lua::kMaxLogBytes >> 20) + " MiB of log)"};
    if (in.on_log) in.on_log(line);
    out.log.push_back(std::move(line));
  }
  if (!out.ok) {
    out.error = std::move(c.message);
    out.traceback = std::move(c.traceback);
    out.values.clear();
  }
  return out;
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

bool LuaHost::eval_expr(const std::string& expr, const std::map<std::string, dsl::Value>& globals,
                        const std::string& label, const LuaLimits& limits, bool& result, std::string& error) {
  ExprCall x{s_.get(), &expr, &globals, &label};
  Call c;
  c.body = expr_body;
  c.ud = &x;
  if (!run(*s_, limits, c)) {
    error = when_message(std::move(c.message), label);
    return false;
  }
  result = x.result;
  return true;
}

namespace lua {

StepContext* current_step(lua_State* L) {
  State* s = state_of(L);
  return s ? s->step : nullptr;
}

void check_limits(lua_State* L) {
  State* s = state_of(L);
  if (!s || !s->active) return;
  if (s->abort == Abort::None) {
    if (s->cancel && s->cancel->load(std::memory_order_relaxed))
      s->abort = Abort::Cancel;
    else if (Clock::now() >= s->deadline)
      s->abort = Abort::Time;
    else if (!s->counting && s->used() > s->limit)
      s->abort = Abort::Memory;
  }
  if (s->abort != Abort::None) raise_abort(L, s);
}

void raise_time_limit(lua_State* L) {
  State* s = state_of(L);
  if (s && s->active && s->abort == Abort::None) s->abort = Abort::Time;
  if (s && s->active) raise_abort(L, s);
  luaL_error(L, "time limit exceeded");
  std::abort();  // luaL_error does not return
}

}  // namespace lua

}  // namespace sluice::engine
