// The sluice module of Lua steps: json, csv, stats (against scipy/numpy
// reference values), fs, time, and http against a real server on 127.0.0.1.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/lua_host.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using TempDir = sluice::test::ScratchDir;

void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sample generators of tests/engine/stats_reference.py, in Lua.
const char* kGenerators = R"lua(
local function uniforms(seed, n)
  local s, out = seed, {}
  for i = 1, n do s = s * 16807 % 2147483647; out[i] = s / 2147483647 end
  return out
end
local function normals(seed, n, shift)
  shift = shift or 0
  local u, out = uniforms(seed, 4 * n), {}
  for i = 0, n - 1 do out[i + 1] = (((u[4*i+1] + u[4*i+2]) + u[4*i+3]) + u[4*i+4]) - 2 + shift end
  return out
end
local A = {2.1, 3.4, 1.9, 5.6, 4.2, 3.3, 2.8, 4.9, 3.1, 2.2}
local B = {3.0, 4.4, 2.9, 6.6, 5.1, 4.0, 3.9, 5.5, 4.8, 3.6}
local C = {1.0, 2.5, 2.5, 3.3, 7.0, 0.5, 2.2}
)lua";

struct Fixture {
  LuaHost host;
  TempDir root;
  LuaStepInput in;

  Fixture() {
    std::filesystem::create_directories(root / "work");
    in.workdir = root / "work";
    in.run = {"20260101-000000-000-abcd", "lib", 1};
  }

  LuaStepResult run(const std::string& code) {
    in.code = code;
    return host.run_step(in);
  }

  std::map<std::string, std::string> values(const std::string& code) {
    INFO(code);
    LuaStepResult r = run(code);
    INFO(r.error);
    INFO(r.traceback);
    REQUIRE(r.ok);
    return r.values;
  }

  std::string value(const std::string& code) { return values(code)["v"]; }

  // `expr` evaluated after the generators, returned through sluice.json.
  json eval(const std::string& expr) {
    return json::parse(value(std::string(kGenerators) + "return { v = sluice.json.encode({" + expr + "}) }"));
  }

  std::string error_of(const std::string& code) {
    INFO(code);
    LuaStepResult r = run(code);
    REQUIRE_FALSE(r.ok);
    return r.error;
  }
};

void check_close(const json& got, double want, double rel = 1e-12) {
  INFO("got " << got.dump() << ", want " << want);
  REQUIRE(got.is_number());
  CHECK(got.get<double>() == Approx(want).epsilon(rel).margin(rel * 1e-300));
}

void check_all_close(const json& got, const std::vector<double>& want, double rel = 1e-12) {
  INFO("got " << got.dump());
  REQUIRE(got.is_array());
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) check_close(got[i], want[i], rel);
}

}  // namespace

TEST_CASE("lua_stdlib: json encodes and decodes") {
  Fixture f;
  CHECK(f.value("return { v = sluice.json.encode({ b = 1, a = { 1, 2.5, 'x', true, false }, c = {}, n = sluice.json.null }) }") ==
        R"({"a":[1,2.5,"x",true,false],"b":1,"c":{},"n":null})");
  CHECK(f.value("return { v = sluice.json.encode('a\"b\\n\\1') }") == R"("a\"b\n\u0001")");
  CHECK(f.value("return { v = sluice.json.encode({ [1] = 'a', [3] = 'c' }) }") == R"({"1":"a","3":"c"})");
  CHECK(f.value("return { v = sluice.json.encode({ 1, 2, x = 3 }) }") == R"({"1":1,"2":2,"x":3})");
  CHECK(f.value("return { v = sluice.json.encode(0.1) .. ' ' .. sluice.json.encode(1e300) .. ' ' .. sluice.json.encode(-0) }") ==
        "0.1 1e+300 0");
  CHECK(f.value("return { v = sluice.json.encode({ a = { b = 1 } }, { indent = 2 }) }") == "{\n  \"a\": {\n    \"b\": 1\n  }\n}");
  CHECK(f.value(R"(local t = sluice.json.decode('{"a": [1, 2.5, "x", true, null, {"b": -3e2}], "u": "\\u00e9"}')
      assert(t.a[1] == 1 and t.a[2] == 2.5 and t.a[3] == 'x' and t.a[4] == true and t.a[5] == sluice.json.null)
      assert(t.a[6].b == -300 and #t.a == 6 and t.u == '\195\169')
      assert(tostring(sluice.json.null) == 'sluice.json.null')
      return { v = sluice.json.encode(t) })") == R"({"a":[1,2.5,"x",true,null,{"b":-300}],"u":"é"})");
  CHECK(f.value("return { v = sluice.json.decode('42') + sluice.json.decode('\"1\"') }") == "43");
  // A round trip of nested data keeps every value.
  CHECK(f.value("local t = { name = 'm', scores = { 0.81, 0.86, 1/3 }, nested = { deep = { deeper = { 'x' } } } }\n"
                "local u = sluice.json.decode(sluice.json.encode(t))\n"
                "return { v = u.scores[3] == 1/3 and u.nested.deep.deeper[1] == 'x' and u.name == 'm' }") == "true");

  CHECK(f.error_of("sluice.json.encode({ f = print })") == "lua_inline:lib:1: json.encode: cannot encode a function at $.f");
  CHECK(f.error_of("sluice.json.encode({ 1, 0/0 })") == "lua_inline:lib:1: json.encode: cannot encode nan at $[2]");
  CHECK(f.error_of("sluice.json.encode({ [true] = 1 })") ==
        "lua_inline:lib:1: json.encode: a table key at $ is a boolean; JSON keys are strings or numbers");
  CHECK(f.error_of("sluice.json.encode('\\255')") == "lua_inline:lib:1: json.encode: a string is not valid UTF-8");
  CHECK(f.error_of("local t = {} t.self = t sluice.json.encode(t)").find("json.encode: nested more than 200 levels") !=
        std::string::npos);
  CHECK(f.error_of("sluice.json.decode('{\"a\":}')") ==
        "lua_inline:lib:1: json.decode: parse error at line 1, column 6: syntax error while parsing value - unexpected '}'; "
        "expected '[', '{', or a literal");
  CHECK(f.error_of("sluice.json.decode('[1,2')") ==
        "lua_inline:lib:1: json.decode: parse error at line 1, column 5: syntax error while parsing array - unexpected end "
        "of input; expected ']'");
  CHECK(f.error_of("sluice.json.decode(string.rep('[', 2000))") == "lua_inline:lib:1: json.decode: nested more than 1000 levels");
}

TEST_CASE("lua_stdlib: csv reads RFC 4180 files row by row with typed columns") {
  Fixture f;
  write_file(f.root / "work/data.csv",
             "\xEF\xBB\xBF"  // a byte order mark is skipped
             "id,name,score,ok\r\n"
             "1,plain,0.5,true\r\n"
             "2,\"with, comma\",1e3,false\r\n"
             "3,\"with \"\"quotes\"\"\",-2,1\r\n"
             "\r\n"  // empty lines are skipped
             "4,\"multi\nline\",,0\r\n"
             "5,,  7 ,TRUE");  // no final line break
  auto v = f.values(R"lua(
    local out = {}
    for row in sluice.csv.read('data.csv', { types = { id = 'number', score = 'number', ok = 'boolean' } }) do
      out[#out + 1] = row
    end
    assert(#out == 5)
    assert(out[1].id == 1 and out[1].name == 'plain' and out[1].score == 0.5 and out[1].ok == true)
    assert(out[2].name == 'with, comma' and out[2].score == 1000 and out[2].ok == false)
    assert(out[3].name == 'with "quotes"' and out[3].ok == true)
    assert(out[4].name == 'multi\nline' and out[4].score == nil and out[4].ok == false)
    assert(out[5].name == '' and out[5].score == 7 and out[5].ok == true)
    local cols, names = sluice.csv.columns('data.csv', { types = { score = 'number' }, missing = -1 })
    return { names = table.concat(names, '|'), scores = table.concat(cols.score, ' '), ids = table.concat(cols.id, ' ') }
  )lua");
  CHECK(v["names"] == "id|name|score|ok");
  CHECK(v["scores"] == "0.5 1000 -2 -1 7");
  CHECK(v["ids"] == "1 2 3 4 5");

  write_file(f.root / "work/plain.tsv", "a\t1\nb\t2\n");
  CHECK(f.value(R"lua(
    local rows = {}
    for r in sluice.csv.read('plain.tsv', { header = false, separator = '\t', types = { [2] = 'number' } }) do
      rows[#rows + 1] = r[1] .. '=' .. (r[2] * 10)
    end
    local cols = sluice.csv.columns('plain.tsv', { header = false, separator = '\t' })
    return { v = table.concat(rows, ',') .. ';' .. #cols .. ';' .. cols[2][2] })lua") == "a=10,b=20;2;2");
}

TEST_CASE("lua_stdlib: csv errors name the file, the line and the column") {
  Fixture f;
  write_file(f.root / "work/bad.csv", "id,score\n1,0.5\n2,high\n");
  CHECK(f.error_of("for r in sluice.csv.read('bad.csv', { types = { score = 'number' } }) do end") ==
        "lua_inline:lib:1: csv.read: bad.csv:3: column 'score': 'high' is not a number");
  CHECK(f.error_of("sluice.csv.columns('bad.csv', { types = { nope = 'number' } })") ==
        "lua_inline:lib:1: csv.columns: types names column 'nope', which is not in the header of bad.csv");
  CHECK(f.error_of("sluice.csv.columns('bad.csv', { types = { score = 'float' } })") ==
        "lua_inline:lib:1: csv.columns: type of column 'score' must be \"number\", \"string\" or \"boolean\"");
  write_file(f.root / "work/ragged.csv", "a,b\n1,2\n3\n");
  CHECK(f.error_of("sluice.csv.columns('ragged.csv')") == "lua_inline:lib:1: csv.columns: ragged.csv:3: the row has 1 fields, the header has 2");
  write_file(f.root / "work/open.csv", "a,b\n1,\"never\nclosed\n");
  CHECK(f.error_of("for r in sluice.csv.read('open.csv') do end") ==
        "lua_inline:lib:1: csv.read: open.csv: a quoted field opened on line 2 is not closed");
  write_file(f.root / "work/after.csv", "a,b\n\"x\"y,2\n");
  CHECK(f.error_of("sluice.csv.columns('after.csv')") ==
        "lua_inline:lib:1: csv.columns: after.csv: line 2: unexpected text after a closing quote");
  CHECK(f.error_of("sluice.csv.read('missing.csv')") ==
        "lua_inline:lib:1: csv.read: cannot open 'missing.csv': No such file or directory");
  CHECK(f.error_of("sluice.csv.read('../x.csv')") ==
        "lua_inline:lib:1: csv.read: '../x.csv' is refused: '..' is not allowed in sluice.fs paths");
}

TEST_CASE("lua_stdlib: csv round trips through write and read") {
  Fixture f;
  auto v = f.values(R"lua(
    local rows = {
      { id = 1, name = 'plain', score = 0.1, ok = true },
      { id = 2, name = 'comma, inside', score = 1/3, ok = false },
      { id = 3, name = 'quote " inside', score = -1e-7 },
      { id = 4, name = 'line\nbreak', score = 2^53 },
    }
    local n = sluice.csv.write('out/rows.csv', { 'id', 'name', 'score', 'ok' }, rows)
    sluice.csv.write('arrays.csv', nil, { { 'a', 1 }, { 'b', 2 } })
    local back = {}
    for r in sluice.csv.read('out/rows.csv', { types = { id = 'number', score = 'number', ok = 'boolean' } }) do
      back[#back + 1] = r
    end
    for i, r in ipairs(rows) do
      for k, x in pairs(r) do assert(back[i][k] == x, 'row ' .. i .. ' ' .. k) end
    end
    assert(back[3].ok == nil)
    return { n = n, same = #back == 4 }
  )lua");
  CHECK(v["n"] == "4");
  CHECK(v["same"] == "true");
  CHECK(read_file(f.root / "work/out/rows.csv") ==
        "id,name,score,ok\n1,plain,0.1,true\n2,\"comma, inside\",0.3333333333333333,false\n"
        "3,\"quote \"\" inside\",-1e-07,\n4,\"line\nbreak\",9007199254740992,\n");
  CHECK(read_file(f.root / "work/arrays.csv") == "a,1\nb,2\n");
  CHECK(f.error_of("sluice.csv.write('x.csv', {'a'}, { { a = {} } })") ==
        "lua_inline:lib:1: csv.write: rows[1][1] is a table; fields are strings, numbers, booleans or nil");
  CHECK(f.error_of("sluice.csv.write('/tmp/x.csv', {'a'}, {})") ==
        "lua_inline:lib:1: csv.write: '/tmp/x.csv' is refused: writing is allowed only inside the work dir");
}

TEST_CASE("lua_stdlib: csv streams a large file without holding it") {
  Fixture f;
  {
    std::ofstream out(f.root / "work/big.csv");
    out << "i,x\n";
    for (int i = 0; i < 200000; ++i) out << i << "," << (i % 7) * 0.5 << "\n";
  }
  f.in.limits.memory = 16ull << 20;  // the file is ~2 MB; rows are read one at a time
  CHECK(f.value("local s, n = 0, 0\n"
                "for r in sluice.csv.read('big.csv', { types = { x = 'number' } }) do s = s + r.x; n = n + 1 end\n"
                "return { v = n .. ' ' .. s }") == "200000 299997");
}

TEST_CASE("lua_stdlib: stats match numpy and scipy reference values") {
  // The constants come from tests/engine/stats_reference.py (numpy 1.24.2, scipy 1.10.1).
  Fixture f;
  check_close(f.eval("sluice.stats.mean(A)")[0], 3.35);
  check_close(f.eval("sluice.stats.variance(A)")[0], 1.505);
  check_close(f.eval("sluice.stats.stddev(A)")[0], 1.2267844146385296);
  check_close(f.eval("sluice.stats.median(A)")[0], 3.2);
  check_close(f.eval("sluice.stats.sum(A)")[0], 33.5);
  check_all_close(f.eval("sluice.stats.min(A), sluice.stats.max(A)"), {1.9, 5.6});
  check_all_close(f.eval("sluice.stats.quantile(A, {0, .1, .25, .5, .9, 1})")[0], {1.9, 2.08, 2.35, 3.2, 4.97, 5.6});
  check_close(f.eval("sluice.stats.quantile(A, 0.33)")[0], 2.782);

  json h = f.eval("sluice.stats.histogram(A, 4)");
  check_all_close(h[0], {4, 3, 1, 2});
  check_all_close(h[1], {1.9, 2.8249999999999997, 3.75, 4.675, 5.6});
  h = f.eval("sluice.stats.histogram(A, {1, 2, 3, 4, 6})");
  check_all_close(h[0], {1, 3, 3, 3});
  h = f.eval("sluice.stats.histogram({5, 5, 5}, 2)");
  check_all_close(h[0], {0, 3});
  check_all_close(h[1], {4.5, 5.0, 5.5});

  check_close(f.eval("sluice.stats.psi(normals(1, 1000), normals(2, 800, 0.3))")[0], 0.2537604243859516);
  check_close(f.eval("sluice.stats.psi(normals(1, 1000), normals(1, 1000))")[0], 0.0);
  check_close(f.eval("sluice.stats.psi(normals(1, 1000), normals(2, 800, 0.3), 5)")[0], 0.2106457990926981);
  json psi = f.eval("sluice.stats.psi(normals(1, 1000), (function() local t = {} for i = 1, 50 do t[i] = 0.0 end return t end)(), { bins = 10 })");
  check_close(psi[0], 8.283089355027482);  // 9 of 10 bins empty in `actual`: epsilon 1e-4 stands in
  CHECK(psi[1]["edges"].size() == 9);
  CHECK(psi[1]["expected"].size() == 10);

  struct Ks {
    const char* args;
    double statistic, pvalue, rel;
    const char* method;
  } ks[] = {
      {"A, B", 0.5, 0.16782134274394334, 1e-12, "exact"},
      {"A, C", 0.4142857142857143, 0.37823940765117225, 1e-12, "exact"},
      {"A, A", 0.0, 1.0, 1e-12, "exact"},
      {"normals(3, 300), normals(4, 250, 0.2)", 0.19733333333333333, 4.0407442145767543e-05, 1e-10, "exact"},
      {"normals(5, 400), normals(6, 400, 0.1)", 0.1025, 0.02985302150862578, 1e-12, "exact"},
      // asymptotic (a sample over 10,000): kstwo.sf(D, round(n1 n2 / (n1 + n2)))
      {"normals(7, 12000), normals(8, 11000, 0.02)", 0.02616666666666667, 0.0007585397564368204, 1e-8, "asymptotic"},
      {"normals(9, 12000), normals(10, 11000, 0.1)", 0.07484848484848489, 2.0846391872141094e-28, 1e-8, "asymptotic"},
      {"normals(11, 20000), normals(12, 100, 0.1)", 0.1368999999999999, 0.04267108401384219, 1e-10, "asymptotic"},
      {"normals(13, 12000), normals(14, 11000)", 0.013015151515151507, 0.2828920199300303, 1e-9, "asymptotic"},
      {"normals(15, 12000), normals(16, 11000, 0.01)", 0.009499999999999953, 0.6745871084669801, 1e-9, "asymptotic"},
  };
  for (const Ks& k : ks) {
    INFO(k.args);
    json r = f.eval(std::string("sluice.stats.ks_2samp(") + k.args + ")");
    check_close(r[0], k.statistic, 1e-12);
    check_close(r[1], k.pvalue, k.rel);
    CHECK(r[2] == k.method);
  }

  json c = f.eval("sluice.stats.chi2({16, 18, 16, 14, 12, 12})");
  check_all_close(c, {2.0, 0.8491450360846096, 5});
  c = f.eval("sluice.stats.chi2({16, 18, 16, 14, 12, 12}, {16, 16, 16, 16, 16, 8})");
  check_all_close(c, {3.5, 0.6233876277495822, 5});
  c = f.eval("sluice.stats.chi2({120, 80, 95, 105, 300}, {100, 100, 100, 100, 300})");
  check_all_close(c, {8.5, 0.07488722802224608, 4});

  c = f.eval("sluice.stats.chi2_contingency({{10, 20}, {30, 25}})");
  check_all_close(json::array({c[0], c[1], c[2]}), {2.706155303030302, 0.0999616438735349, 1});
  check_all_close(c[3][0], {14.117647058823529, 15.882352941176471});
  check_all_close(c[3][1], {25.88235294117647, 29.11764705882353});
  c = f.eval("sluice.stats.chi2_contingency({{10, 20}, {30, 25}}, { correction = false })");
  check_all_close(json::array({c[0], c[1], c[2]}), {3.505892255892255, 0.06115089757606777, 1});
  c = f.eval("sluice.stats.chi2_contingency({{12, 5, 8}, {7, 14, 9}})");
  check_all_close(json::array({c[0], c[1], c[2]}), {5.22641898864809, 0.07329891339166422, 2});
  check_all_close(c[3][1], {10.363636363636363, 10.363636363636363, 9.272727272727273});
}

TEST_CASE("lua_stdlib: stats reject bad input with the element named") {
  Fixture f;
  CHECK(f.error_of("sluice.stats.mean({})") == "lua_inline:lib:1: stats.mean: xs needs at least 1 value, has 0");
  CHECK(f.error_of("sluice.stats.variance({1})") == "lua_inline:lib:1: stats.variance: xs needs at least 2 values, has 1");
  CHECK(f.error_of("sluice.stats.mean({1, 'x'})") == "lua_inline:lib:1: stats.mean: xs[2] is a string, not a number");
  CHECK(f.error_of("sluice.stats.mean({1, 0/0})") == "lua_inline:lib:1: stats.mean: xs[2] is NaN");
  CHECK(f.error_of("sluice.stats.mean(3)") == "lua_inline:lib:1: stats.mean: xs is a number, not an array of numbers");
  CHECK(f.error_of("sluice.stats.quantile({1, 2}, 1.5)") == "lua_inline:lib:1: stats.quantile: q = 1.5 is not in [0, 1]");
  CHECK(f.error_of("sluice.stats.chi2({10, 20}, {10, 10})") ==
        "lua_inline:lib:1: stats.chi2: observed and expected totals differ (30 and 20); scale expected to the same total");
  CHECK(f.error_of("sluice.stats.chi2_contingency({{0, 1}, {0, 2}})") ==
        "lua_inline:lib:1: stats.chi2_contingency: the expected frequency at [1][1] is zero");
  CHECK(f.error_of("sluice.stats.histogram({1, 2}, 0)") ==
        "lua_inline:lib:1: stats.histogram: bins must be a whole number >= 1 or an array of edges");
}

TEST_CASE("lua_stdlib: stats on a large column run in C++") {
  Fixture f;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(f.value("local xs = {} for i = 1, 1000000 do xs[i] = i % 1000 end\n"
                "return { v = sluice.stats.mean(xs) .. ' ' .. sluice.stats.quantile(xs, 0.5) }") == "499.5 499.5");
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);  // a sanity bound, not a benchmark
}

TEST_CASE("lua_stdlib: fs reads and writes inside the work dir and reads declared inputs") {
  Fixture f;
  write_file(f.root / "inputs/data/part-1.txt", "one");
  write_file(f.root / "inputs/data/part-2.txt", "two");
  write_file(f.root / "inputs/single.txt", "single");
  f.in.inputs["parts"] = f.root / "inputs/data";
  f.in.inputs["single"] = f.root / "inputs/single.txt";
  f.in.outputs["report"] = f.root / "work/reports/report.txt";
  auto v = f.values(R"lua(
    sluice.fs.write('a.txt', 'alpha')
    sluice.fs.write('./nested/deeper/b.txt', 'beta')
    sluice.fs.write(ctx.outputs.report, 'done')
    sluice.fs.write('num.txt', 42)
    return {
      a = sluice.fs.read('a.txt'), b = sluice.fs.read('nested/deeper/b.txt'),
      abs = sluice.fs.read(ctx.workdir .. '/a.txt'),
      single = sluice.fs.read(ctx.inputs.single),
      part = sluice.fs.read(ctx.inputs.parts .. '/part-2.txt'),
      list = table.concat(sluice.fs.list(), ','),
      parts = table.concat(sluice.fs.list(ctx.inputs.parts), ','),
      yes = sluice.fs.exists('a.txt'), no = sluice.fs.exists('nope.txt'),
      input = sluice.fs.exists(ctx.inputs.single),
    }
  )lua");
  CHECK(v["a"] == "alpha");
  CHECK(v["b"] == "beta");
  CHECK(v["abs"] == "alpha");
  CHECK(v["single"] == "single");
  CHECK(v["part"] == "two");
  CHECK(v["list"] == "a.txt,nested,num.txt,reports");
  CHECK(v["parts"] == "part-1.txt,part-2.txt");
  CHECK(v["yes"] == "true");
  CHECK(v["no"] == "false");
  CHECK(v["input"] == "true");
  CHECK(read_file(f.root / "work/reports/report.txt") == "done");
  CHECK(read_file(f.root / "work/num.txt") == "42");

  CHECK(f.error_of("sluice.fs.read('nope.txt')") == "lua_inline:lib:1: fs.read: cannot open 'nope.txt': No such file or directory");
  CHECK(f.error_of("sluice.fs.read('.')") == "lua_inline:lib:1: fs.read: '.' is a directory");
  CHECK(f.error_of("sluice.fs.read('')") == "lua_inline:lib:1: fs.read: '' is refused: the path is empty");
  CHECK(f.error_of("sluice.fs.read('" + (f.root / "inputs/other.txt") + "')") ==
        "lua_inline:lib:1: fs.read: '" + (f.root / "inputs/other.txt") + "' is refused: it is outside the work dir and the declared inputs");
  CHECK(f.error_of("sluice.fs.write(ctx.inputs.parts .. '/x', 'y')") ==
        "lua_inline:lib:1: fs.write: '" + (f.root / "inputs/data/x") + "' is refused: declared inputs are read-only");
  CHECK(f.error_of("sluice.fs.write('a.txt', {})") == "lua_inline:lib:1: fs.write: data is a table, not a string");
  CHECK(f.error_of("sluice.fs.list('a/../..')") == "lua_inline:lib:1: fs.list: 'a/../..' is refused: '..' is not allowed in sluice.fs paths");
  // Reading counts against the step's memory limit.
  write_file(f.root / "work/big.bin", std::string(8 << 20, 'x'));
  f.in.limits.memory = 4ull << 20;
  CHECK(f.error_of("sluice.fs.read('big.bin')") == "memory limit exceeded");
}

TEST_CASE("lua_stdlib: time") {
  Fixture f;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double got = std::stod(f.value("return { v = string.format('%.3f', sluice.time.now()) }"));
  CHECK(std::abs(got - now) < 5);
  CHECK(f.value("return { v = sluice.time.format(0) }") == "1970-01-01T00:00:00Z");
  CHECK(f.value("return { v = sluice.time.format(1700000000.9, '%Y-%m-%d %H:%M:%S') }") == "2023-11-14 22:13:20");
  CHECK(f.value("return { v = #sluice.time.format() }") == "20");
  CHECK(f.error_of("sluice.time.format(1e300)") == "lua_inline:lib:1: time.format: time 1e+300 is out of range");
}

TEST_CASE("lua_stdlib: http talks to allowed hosts only") {
  httplib::Server server;
  server.Get("/hello", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Echo", req.get_header_value("X-Token"));
    res.set_content("hello " + req.get_param_value("name"), "text/plain");
  });
  server.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_content(req.body, req.get_header_value("Content-Type").c_str());
  });
  server.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(1500ms);
    res.set_content("late", "text/plain");
  });
  server.Get("/moved", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("http://example.com/"); });
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread thread([&] { server.listen_after_bind(); });
  struct Stop {
    httplib::Server& s;
    std::thread& t;
    ~Stop() {
      s.stop();
      t.join();
    }
  } stop{server, thread};
  for (int i = 0; i < 500 && !server.is_running(); ++i) std::this_thread::sleep_for(10ms);  // bound already: requests queue

  Fixture f;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  f.in.http_hosts = {"127.0.0.1"};
  auto v = f.values("local r = sluice.http.get('" + base + "/hello?name=lua', { headers = { ['X-Token'] = 'abc' } })\n"
                    "local p = sluice.http.post('" + base + "/echo', '{\"a\":1}', { headers = { ['Content-Type'] = 'application/json' } })\n"
                    "return { status = r.status, body = r.body, echo = r.headers['x-echo'], type = r.headers['content-type'],\n"
                    "         pstatus = p.status, pbody = sluice.json.decode(p.body).a, ptype = p.headers['content-type'] }");
  CHECK(v["status"] == "200");
  CHECK(v["body"] == "hello lua");
  CHECK(v["echo"] == "abc");
  CHECK(v["type"] == "text/plain");
  CHECK(v["pstatus"] == "201");
  CHECK(v["pbody"] == "1");
  CHECK(v["ptype"] == "application/json");

  // Redirects are returned, not followed.
  v = f.values("local r = sluice.http.get('" + base + "/moved') return { s = r.status, l = r.headers.location }");
  CHECK(v["s"] == "302");
  CHECK(v["l"] == "http://example.com/");

  // A host:port entry allows that port only; names are compared without case.
  f.in.http_hosts = {"LOCALHOST:1", "127.0.0.1:" + std::to_string(port)};
  CHECK(f.value("return { v = sluice.http.get('" + base + "/hello').status }") == "200");
  CHECK(f.error_of("sluice.http.get('http://localhost:" + std::to_string(port) + "/hello')") ==
        "lua_inline:lib:1: http.get: host 'localhost' is not in this step's allowed hosts");
  f.in.http_hosts.clear();
  CHECK(f.error_of("sluice.http.get('" + base + "/hello')") ==
        "lua_inline:lib:1: http.get: host '127.0.0.1' is not in this step's allowed hosts (none are allowed)");
  f.in.http_hosts = {"127.0.0.1"};
  CHECK(f.error_of("sluice.http.get('file:///etc/passwd')") ==
        "lua_inline:lib:1: http.get: 'file:///etc/passwd': only http and https URLs are allowed");
  CHECK(f.error_of("sluice.http.get('not a url')") == "lua_inline:lib:1: http.get: 'not a url' is not a valid URL");

  // The request's timeout, and the step's deadline, both hold.
  std::string e = f.error_of("sluice.http.get('" + base + "/slow', { timeout = 0.2 })");
  CHECK(e.rfind("lua_inline:lib:1: http.get: GET " + base + "/slow failed: Operation timed out after", 0) == 0);
  f.in.limits.time = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(f.error_of("sluice.http.get('" + base + "/slow')") == "time limit exceeded");
  CHECK(std::chrono::steady_clock::now() - t0 < 1200ms);
}
