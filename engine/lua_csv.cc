// sluice.csv: a streaming RFC 4180 reader (quoted fields with embedded
// separators, quotes and line breaks; CRLF or LF) with typed columns, and a
// writer. Parsing runs in C++; Lua sees rows or whole columns.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "engine/csv.h"
#include "engine/lua_stdlib.h"

namespace sluice::engine::lua {

namespace {

using CsvReader = csv::Reader;

enum class ColType { String, Number, Boolean };

// A reader with its options, owned by a Lua userdata (read's iterator) or by
// a C++ scope (columns).
struct CsvFile {
  std::string name;  // the path as the script wrote it
  CsvReader reader;
  bool header = true;
  std::vector<std::string> names;     // header mode
  std::vector<ColType> types;         // per column (header mode), or per index
  std::vector<std::string> fields;
  CsvFile(std::string n, char sep) : name(std::move(n)), reader(sep) {}
};

struct Options {
  bool header = true;
  char sep = ',';
  int types = 0;    // stack index of the types table, 0 = none
  int missing = 0;  // stack index of the `missing` value, 0 = nil
};

Options parse_options(lua_State* L, int index, const char* fn) {
  Options o;
  if (lua_isnoneornil(L, index)) return o;
  if (!lua_istable(L, index)) raise(L, fn, std::string("options are a ") + luaL_typename(L, index) + ", not a table");
  lua_getfield(L, index, "header");
  if (!lua_isnil(L, -1)) o.header = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, index, "separator");
  if (!lua_isnil(L, -1)) {
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    if (!s || len != 1 || *s == '"' || *s == '\n' || *s == '\r') raise(L, fn, "separator must be one character (not a quote or line break)");
    o.sep = *s;
  }
  lua_pop(L, 1);
  lua_getfield(L, index, "types");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) raise(L, fn, "types must be a table of column = \"number\" | \"string\" | \"boolean\"");
    o.types = lua_gettop(L);
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, index, "missing");
  if (!lua_isnil(L, -1))
    o.missing = lua_gettop(L);
  else
    lua_pop(L, 1);
  return o;
}

ColType type_named(lua_State* L, const char* fn, int index, const std::string& column) {
  const char* t = lua_tostring(L, index);
  if (t && std::strcmp(t, "number") == 0) return ColType::Number;
  if (t && std::strcmp(t, "string") == 0) return ColType::String;
  if (t && std::strcmp(t, "boolean") == 0) return ColType::Boolean;
  raise(L, fn, "type of column " + column + " must be \"number\", \"string\" or \"boolean\"");
}

int open_file(lua_State* L, const char* fn, const std::string& name) {
  StepContext& c = step_of(L, fn);
  const std::string path = resolve_path(L, c, fn, name, Access::Read);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) raise(L, fn, "cannot read '" + name + "': " + std::strerror(errno));
  return fd;
}

// Reads the header (in header mode) and resolves the column types.
void start(lua_State* L, const char* fn, CsvFile& f, const Options& o) {
  f.header = o.header;
  if (f.header) {
    std::string error;
    size_t count = 0;
    const auto r = f.reader.next(f.fields, count, error);
    if (r == CsvReader::Result::Error) raise(L, fn, f.name + ": " + error);
    f.names.assign(f.fields.begin(), f.fields.begin() + static_cast<std::ptrdiff_t>(count));
    f.types.assign(count, ColType::String);
  }
  if (!o.types) return;
  lua_pushnil(L);
  while (lua_next(L, o.types)) {
    if (f.header) {
      if (lua_type(L, -2) != LUA_TSTRING) raise(L, fn, "types are keyed by column name when the file has a header");
      const std::string col = lua_tostring(L, -2);
      size_t i = 0;
      while (i < f.names.size() && f.names[i] != col) ++i;
      if (i == f.names.size()) raise(L, fn, "types names column '" + col + "', which is not in the header of " + f.name);
      f.types[i] = type_named(L, fn, -1, "'" + col + "'");
    } else {
      if (lua_type(L, -2) != LUA_TNUMBER || lua_tonumber(L, -2) < 1)
        raise(L, fn, "types are keyed by column number (1, 2, ...) when the file has no header");
      const size_t i = static_cast<size_t>(lua_tonumber(L, -2)) - 1;
      if (i > 100000) raise(L, fn, "types names column " + std::to_string(i + 1) + ", too many columns");
      if (f.types.size() <= i) f.types.resize(i + 1, ColType::String);
      f.types[i] = type_named(L, fn, -1, std::to_string(i + 1));
    }
    lua_pop(L, 1);
  }
}

std::string column_label(const CsvFile& f, size_t i) {
  return f.header ? "'" + f.names[i] + "'" : std::to_string(i + 1);
}

// Pushes field i of the current record converted to its column's type.
void push_field(lua_State* L, const char* fn, CsvFile& f, size_t i, int missing) {
  const std::string& text = f.fields[i];
  const ColType t = i < f.types.size() ? f.types[i] : ColType::String;
  if (t == ColType::String) {
    lua_pushlstring(L, text.data(), text.size());
    return;
  }
  auto push_missing = [&] {
    if (missing)
      lua_pushvalue(L, missing);
    else
      lua_pushnil(L);
  };
  if (t == ColType::Number) {
    double d = 0;
    switch (csv::parse_number(text, d)) {
      case csv::Number::Ok:
        lua_pushnumber(L, d);
        return;
      case csv::Number::Empty:
        push_missing();
        return;
      case csv::Number::Invalid:
        break;
    }
    raise(L, fn, f.name + ":" + std::to_string(f.reader.record_line()) + ": column " + column_label(f, i) + ": '" + text +
                     "' is not a number");
  }
  size_t b = 0, e = text.size();
  while (b < e && (text[b] == ' ' || text[b] == '\t')) ++b;
  while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t')) --e;
  if (b == e) {
    push_missing();
    return;
  }
  std::string v(text, b, e - b);
  for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (v == "true" || v == "1") {
    lua_pushboolean(L, 1);
  } else if (v == "false" || v == "0") {
    lua_pushboolean(L, 0);
  } else {
    raise(L, fn, f.name + ":" + std::to_string(f.reader.record_line()) + ": column " + column_label(f, i) + ": '" + text +
                     "' is not a boolean (true, false, 1, 0)");
  }
}

// The next record, checked against the header; false at the end.
bool next_record(lua_State* L, const char* fn, CsvFile& f, size_t& count) {
  std::string error;
  const auto r = f.reader.next(f.fields, count, error);
  if (r == CsvReader::Result::End) return false;
  if (r == CsvReader::Result::Error) raise(L, fn, f.name + ": " + error);
  if (f.header && count != f.names.size())
    raise(L, fn, f.name + ":" + std::to_string(f.reader.record_line()) + ": the row has " + std::to_string(count) +
                     " fields, the header has " + std::to_string(f.names.size()));
  return true;
}

int csv_gc(lua_State* L) {
  auto* f = static_cast<CsvFile*>(lua_touserdata(L, 1));
  f->~CsvFile();
  return 0;
}

char kCsvMetaKey;

// The iterator read() returns; upvalues: the CsvFile userdata, `missing`.
int csv_iter(lua_State* L) {
  auto* f = static_cast<CsvFile*>(lua_touserdata(L, lua_upvalueindex(1)));
  size_t count = 0;
  if (!next_record(L, "csv.read", *f, count)) {
    f->reader.close();
    return 0;
  }
  const int missing = lua_isnil(L, lua_upvalueindex(2)) ? 0 : lua_upvalueindex(2);
  if (f->header) {
    lua_createtable(L, 0, static_cast<int>(count));
    for (size_t i = 0; i < count; ++i) {
      lua_pushlstring(L, f->names[i].data(), f->names[i].size());
      push_field(L, "csv.read", *f, i, missing);
      lua_rawset(L, -3);
    }
  } else {
    lua_createtable(L, static_cast<int>(count), 0);
    for (size_t i = 0; i < count; ++i) {
      push_field(L, "csv.read", *f, i, missing);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
  }
  return 1;
}

// Pushes a userdata owning the open file (closed by __gc at the latest).
CsvFile* new_csv_file(lua_State* L, const char* fn, const std::string& name, char sep) {
  void* mem = lua_newuserdata(L, sizeof(CsvFile));
  auto* f = new (mem) CsvFile(name, sep);
  lua_pushlightuserdata(L, &kCsvMetaKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_setmetatable(L, -2);
  f->reader.attach(open_file(L, fn, name));
  return f;
}

// read(path [, {header = true, types = {...}, separator = ",", missing = v}])
// -> an iterator of rows: tables keyed by column name, or arrays without a header.
int csv_read(lua_State* L) {
  const std::string name = luaL_checkstring(L, 1);
  const Options o = parse_options(L, 2, "csv.read");
  CsvFile* f = new_csv_file(L, "csv.read", name, o.sep);
  const int ud = lua_gettop(L);
  start(L, "csv.read", *f, o);
  lua_pushvalue(L, ud);
  if (o.missing)
    lua_pushvalue(L, o.missing);
  else
    lua_pushnil(L);
  lua_pushcclosure(L, csv_iter, 2);
  return 1;
}

// columns(path [, options]) -> { name = {values...} }, { names in order } with a
// header; { {column 1...}, {column 2...} } without.
int csv_columns(lua_State* L) {
  const std::string name = luaL_checkstring(L, 1);
  const Options o = parse_options(L, 2, "csv.columns");
  CsvFile* f = new_csv_file(L, "csv.columns", name, o.sep);
  start(L, "csv.columns", *f, o);
  std::vector<int> cols;  // stack indexes of the column arrays
  auto make_columns = [&](size_t n) {
    luaL_checkstack(L, static_cast<int>(n) + 8, "csv.columns: too many columns");
    for (size_t i = 0; i < n; ++i) {
      lua_newtable(L);
      cols.push_back(lua_gettop(L));
    }
  };
  if (f->header) make_columns(f->names.size());
  const int missing = o.missing;
  size_t count = 0;
  int rows = 0;
  while (next_record(L, "csv.columns", *f, count)) {
    if (!f->header) {
      if (rows == 0) make_columns(count);
      if (count != cols.size())
        raise(L, "csv.columns", name + ":" + std::to_string(f->reader.record_line()) + ": the row has " +
                                    std::to_string(count) + " fields, the first row has " + std::to_string(cols.size()));
    }
    ++rows;
    for (size_t i = 0; i < count; ++i) {
      push_field(L, "csv.columns", *f, i, missing);
      lua_rawseti(L, cols[i], rows);
    }
    if ((rows & 1023) == 0) check_limits(L);
  }
  f->reader.close();
  lua_createtable(L, 0, static_cast<int>(cols.size()));
  const int result = lua_gettop(L);
  for (size_t i = 0; i < cols.size(); ++i) {
    if (f->header) {
      lua_pushlstring(L, f->names[i].data(), f->names[i].size());
      lua_pushvalue(L, cols[i]);
      lua_rawset(L, result);
    } else {
      lua_pushvalue(L, cols[i]);
      lua_rawseti(L, result, static_cast<int>(i + 1));
    }
  }
  if (!f->header) return 1;
  lua_createtable(L, static_cast<int>(f->names.size()), 0);
  for (size_t i = 0; i < f->names.size(); ++i) {
    lua_pushlstring(L, f->names[i].data(), f->names[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 2;
}

void append_field(lua_State* L, std::string& out, int index, char sep, const std::string& where) {
  std::string text;
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return;
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, index, &len);
      text.assign(s, len);
      break;
    }
    case LUA_TNUMBER:
      out += format_number(lua_tonumber(L, index));
      return;
    case LUA_TBOOLEAN:
      out += lua_toboolean(L, index) ? "true" : "false";
      return;
    default:
      raise(L, "csv.write", where + " is a " + luaL_typename(L, index) + "; fields are strings, numbers, booleans or nil");
  }
  csv::append_field(out, text, sep);
}

// write(path, header, rows [, {separator = ","}]) -> number of rows written.
// header: an array of names, or nil for none. rows: arrays, or (with a header)
// tables keyed by name. Lines end with "\n"; fields are quoted when needed.
int csv_write(lua_State* L) {
  StepContext& c = step_of(L, "csv.write");
  const std::string name = luaL_checkstring(L, 1);
  const bool has_header = !lua_isnil(L, 2);
  if (has_header && !lua_istable(L, 2)) raise(L, "csv.write", "header must be an array of column names or nil");
  if (!lua_istable(L, 3)) raise(L, "csv.write", std::string("rows are a ") + luaL_typename(L, 3) + ", not an array");
  const Options o = parse_options(L, 4, "csv.write");
  const int header_len = has_header ? static_cast<int>(lua_objlen(L, 2)) : 0;
  const std::string path = resolve_path(L, c, "csv.write", name, Access::Write);
  std::string out;
  for (int i = 1; i <= header_len; ++i) {
    if (i > 1) out += o.sep;
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING) raise(L, "csv.write", "header[" + std::to_string(i) + "] is not a string");
    append_field(L, out, lua_gettop(L), o.sep, "header[" + std::to_string(i) + "]");
    lua_pop(L, 1);
  }
  if (has_header) out += '\n';
  struct Fd {  // closed however this call ends (Lua errors unwind C++ frames on x86-64)
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } file{::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)};
  const int fd = file.fd;
  if (fd < 0) raise(L, "csv.write", "cannot write '" + name + "': " + std::strerror(errno));
  auto flush = [&](bool force) {
    if (!force && out.size() < (1u << 16)) return true;
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    out.clear();
    return true;
  };
  const int nrows = static_cast<int>(lua_objlen(L, 3));
  std::string failure;
  for (int r = 1; r <= nrows && failure.empty(); ++r) {
    lua_rawgeti(L, 3, r);
    const int row = lua_gettop(L);
    const std::string where = "rows[" + std::to_string(r) + "]";
    if (!lua_istable(L, row)) raise(L, "csv.write", where + " is a " + luaL_typename(L, row) + ", not a table");
    lua_rawgeti(L, row, 1);
    const bool keyed = has_header && lua_isnil(L, -1) && header_len > 0;
    lua_pop(L, 1);
    const int n = keyed ? header_len : static_cast<int>(lua_objlen(L, row));
    for (int i = 1; i <= n; ++i) {
      if (i > 1) out += o.sep;
      if (keyed) {
        lua_rawgeti(L, 2, i);
        lua_rawget(L, row);
      } else {
        lua_rawgeti(L, row, i);
      }
      append_field(L, out, lua_gettop(L), o.sep, where + "[" + std::to_string(i) + "]");
      lua_pop(L, 1);
    }
    out += '\n';
    lua_settop(L, row - 1);
    if (!flush(false)) failure = std::strerror(errno);
    if ((r & 1023) == 0) check_limits(L);
  }
  if (failure.empty() && !flush(true)) failure = std::strerror(errno);
  file.fd = -1;
  if (::close(fd) != 0 && failure.empty()) failure = std::strerror(errno);
  if (!failure.empty()) raise(L, "csv.write", "cannot write '" + name + "': " + failure);
  lua_pushinteger(L, nrows);
  return 1;
}

}  // namespace

void add_csv(lua_State* L) {
  lua_pushlightuserdata(L, &kCsvMetaKey);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, csv_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_newtable(L);
  lua_pushcfunction(L, csv_read);
  lua_setfield(L, -2, "read");
  lua_pushcfunction(L, csv_columns);
  lua_setfield(L, -2, "columns");
  lua_pushcfunction(L, csv_write);
  lua_setfield(L, -2, "write");
  lua_setfield(L, -2, "csv");
}

}  // namespace sluice::engine::lua
