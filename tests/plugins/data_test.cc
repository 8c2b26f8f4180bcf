// The built-in data plugin (plugins/data): data.anonymize loaded from the
// build tree and run in plugin workers on real files. Hashes are checked
// against Python's hashlib (sha256((salt + value).encode()).hexdigest()),
// computed outside sluice and written in here.
#include <cstdio>

#include "plugins/plugin_fixture.h"

using nlohmann::json;
using sluice::test::list_dir;
using sluice::test::PluginFixture;
using sluice::test::slurp;
using sluice::test::spit;

namespace {

// python3 -c "import hashlib; print(hashlib.sha256(('pepper' + V).encode()).hexdigest())"
const std::string kAnn = "831740710d6a8225c6ad8e71610353afdfcf9f6a3caa448dc11ab17a513081c2";  // ann@example.com
const std::string kBo = "9c54527784adf87ab65bcf3748136a43afb8581a49cbe62761ddd4bf0b0ef74a";   // bo@example.com
const std::string kXyz = "8f16cef8fbc6d8c60b31d8a6831c59456f6503eac31b81b68638f0ae5ffe1332";  // x@y.z

const std::string kPeople =
    "id,name,email,age,birth,city,note\n"
    "1,Ann Lee,ann@example.com,23,1990-05-17,Z\xC3\xBCrich,\"likes \"\"cats\"\", dogs\"\n"
    "2,\"Bo, Jr.\",bo@example.com,37,1985-12-01T08:30:00Z,Oslo,\n"
    "3,C\xC3\xA9,,9,2001-01-31,\"Rome\",\"two\nlines\"\n"
    "\n";

const json kArgs = {{"drop", {"name"}},
                    {"hash", {"email"}},
                    {"salt", "pepper"},
                    {"generalize", {{"age", "bucket:10"}, {"birth", "month"}, {"city", "prefix:2"}}}};

json args_for(const std::string& input, json extra = json::object()) {
  json a = kArgs;
  a["input"] = input;
  for (auto& [k, v] : extra.items()) a[k] = v;
  return a;
}

}  // namespace

TEST_CASE("data: anonymize drops, hashes and generalises columns, keeping RFC 4180 quoting") {
  PluginFixture f("data");
  const std::string in = f.dir / "people.csv", out = f.dir / "out/people.csv";
  spit(in, kPeople);

  auto r = f.invoke("anonymize", args_for(in), {{"data", out}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(slurp(out) ==
        "id,email,age,birth,city,note\n"
        "1," + kAnn + ",20-29,1990-05,Z\xC3\xBC,\"likes \"\"cats\"\", dogs\"\n"
        "2," + kBo + ",30-39,1985-12,Os,\n"
        "3,,0-9,2001-01,\"Ro\",\"two\nlines\"\n");
  CHECK(r.values == std::map<std::string, std::string>{{"rows", "3"}, {"dropped", "1"}, {"hashed", "1"}, {"generalized", "3"}});
  CHECK(list_dir(f.dir.path + "/out") == std::vector<std::string>{"people.csv"});
}

TEST_CASE("data: anonymize keeps CRLF line endings and a byte order mark, and writes another output name") {
  PluginFixture f("data");
  const std::string in = f.dir / "in.csv", out = f.dir / "clean.csv";
  spit(in, "\xEF\xBB\xBF" "email,day,n\r\nx@y.z,2024-02-29,-5\r\n\"x@y.z\",2024-03,1005\r\n");
  auto r = f.invoke("anonymize",
                    {{"input", in}, {"output", "clean"}, {"hash", {"email"}}, {"salt", "pepper"},
                     {"generalize", {{"day", "year"}, {"n", "bucket:1000"}}}},
                    {{"clean", out}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(slurp(out) == "\xEF\xBB\xBF" "email,day,n\r\n" + kXyz + ",2024,-1000--1\r\n\"" + kXyz + "\",2024,1000-1999\r\n");
  CHECK(r.values == std::map<std::string, std::string>{{"rows", "2"}, {"dropped", "0"}, {"hashed", "1"}, {"generalized", "2"}});
}

TEST_CASE("data: anonymize refuses arguments that do not fit the file, writing nothing") {
  PluginFixture f("data");
  const std::string in = f.dir / "people.csv", out = f.dir / "out.csv";
  spit(in, kPeople);
  auto bad = [&](json args) {
    auto r = f.invoke("anonymize", std::move(args), {{"data", out}});
    CHECK(!r.ok);
    CHECK(list_dir(f.dir.path) == std::vector<std::string>{"people.csv"});
    return r.error;
  };
  CHECK(bad(args_for(in, {{"hash", {"emial"}}})) ==
        "bad arguments: 'hash' names column 'emial', which '" + in +
            "' lacks; did you mean 'email'? (its columns: id, name, email, age, birth, city, note)");
  CHECK(bad(args_for(in, {{"drop", {"name", "phone"}}})) ==
        "bad arguments: 'drop' names column 'phone', which '" + in +
            "' lacks (its columns: id, name, email, age, birth, city, note)");
  json unsalted = args_for(in);
  unsalted.erase("salt");
  CHECK(bad(unsalted) ==
        "bad arguments: 'hash' needs a 'salt' (salt = \"${secrets.NAME}\"): unsalted hashes of names or emails are "
        "reversed by guessing");
  CHECK(bad(args_for(in, {{"salt", ""}})) ==
        "bad arguments: 'hash' needs a 'salt' (salt = \"${secrets.NAME}\"): unsalted hashes of names or emails are "
        "reversed by guessing");
  CHECK(bad(args_for(in, {{"drop", {"email"}}})) == "bad arguments: column 'email' is named in both 'drop' and 'hash'");
  CHECK(bad(args_for(in, {{"generalize", {{"age", "bucket:ten"}}}})) ==
        "bad arguments: 'generalize.age': 'bucket:ten': bucket needs a whole number above 0 (bucket:10)");
  CHECK(bad(args_for(in, {{"generalize", {{"age", "round"}}}})) ==
        "bad arguments: 'generalize.age': unknown rule 'round' (use bucket:N, prefix:N, year, month or day)");
  CHECK(bad(args_for(in, {{"drop", "name"}})) == "bad arguments: 'drop' must be an array of strings");
  auto r = f.invoke("anonymize", {{"input", in}}, {{"clean", out}});
  CHECK(r.error == "bad arguments: the step declares no output 'data' (outputs = { data = \"FILE\" })");
}

TEST_CASE("data: anonymize fails on malformed rows and values, naming the row, and leaves no output") {
  PluginFixture f("data");
  const std::string in = f.dir / "in.csv", out = f.dir / "out.csv";
  auto fails = [&](const std::string& csv, json args) {
    spit(in, csv);
    args["input"] = in;
    auto r = f.invoke("anonymize", std::move(args), {{"data", out}});
    CHECK(!r.ok);
    CHECK(list_dir(f.dir.path) == std::vector<std::string>{"in.csv"});
    return r.error;
  };
  const json age = {{"generalize", {{"age", "bucket:10"}}}};
  CHECK(fails("id,age\n1,23\n2,old\n", age) == "'" + in + "': row 3, column 'age': 'old' is not a number (bucket:10)");
  CHECK(fails("id,born\n1,17/05/1990\n", {{"generalize", {{"born", "month"}}}}) ==
        "'" + in + "': row 2, column 'born': '17/05/1990' is not an ISO date (2024-05-17) (month)");
  CHECK(fails("id,age\n1,23\n2\n", age) == "'" + in + "': row 3 has 1 fields, the header has 2");
  CHECK(fails("id,age\n1,\"23\n", age) == in + ": row 2: a quoted field is not closed before the end of the file");
  CHECK(fails("id,age\n1,2\"3\n", age) == in + ": row 2: a quote inside an unquoted field (quote the field and double the quote)");
  CHECK(fails("id,age\n1,\"2\"3\n", age) == in + ": row 2: a quote inside a quoted field must be doubled (\"\")");
  CHECK(fails("", age) == "'" + in + "' is empty: it has no header row");
  CHECK(fails("id,age,age\n1,2,3\n", age) == "'" + in + "' has two columns named 'age'");
}

TEST_CASE("data: anonymize streams a CSV far larger than its memory limit") {
  PluginFixture f("data");
  const std::string in = f.dir / "big.csv", out = f.dir / "out.csv";
  const int rows = 600000;  // ~38 MB, against a 24M limit on the worker's heap
  {
    std::FILE* fp = std::fopen(in.c_str(), "w");
    REQUIRE(fp);
    std::fputs("id,email,age,note\n", fp);
    for (int i = 0; i < rows; ++i)
      std::fprintf(fp, "%d,user%d@example.com,%d,\"padding, padding, padding\"\n", i, i, i % 90);
    std::fclose(fp);
  }
  sluice::engine::ActionCall call;
  call.plugin = "data";
  call.action = "anonymize";
  call.args = sluice::test::with_defaults(f.tm, "anonymize",
                                          {{"input", in}, {"hash", {"email"}}, {"salt", "s"}, {"generalize", {{"age", "bucket:10"}}}});
  call.workdir = f.dir.path;
  call.outputs = {{"data", out}};
  call.memory = 24ull << 20;
  auto r = f.handler->invoke(call, f.ctx);
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values.at("rows") == std::to_string(rows));
  // The last row, hashed as Python does: sha256(b"s" + b"user599999@example.com").
  const std::string text = slurp(out);
  const std::string last = "599999,7c35ee89c4b26d29b55215bb1c3e5e35749373c26ebba54a84a49adac22cb6d3,50-59,\"padding, padding, padding\"\n";
  CHECK(text.substr(text.size() - last.size()) == last);
}
