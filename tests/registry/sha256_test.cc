#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "registry/sha256.h"

using namespace sluice::registry;

namespace {

// Published values: FIPS 180-2 appendix B and the NIST example vectors.
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kTwoBlocks = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr const char* kMillionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

std::string temp_file(const std::string& content) {
  std::string path = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/sha256-test-XXXXXX");
  int fd = mkstemp(path.data());
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

}  // namespace

TEST_CASE("sha256: buffers match the published vectors") {
  CHECK(sha256_hex("") == kEmpty);
  CHECK(sha256_hex("abc") == kAbc);
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == kTwoBlocks);
  CHECK(sha256_hex(std::string(1'000'000, 'a')) == kMillionA);
}

TEST_CASE("sha256: files match the published vectors") {
  for (auto [content, expected] : {std::pair<std::string, const char*>{"", kEmpty}, {"abc", kAbc},
                                   {std::string(1'000'000, 'a'), kMillionA}}) {
    std::string path = temp_file(content);
    FileHash h = sha256_file(path);
    unlink(path.c_str());
    REQUIRE(h.ok());
    CHECK(h.hex == expected);
    CHECK(h.size == content.size());
  }
}

TEST_CASE("sha256: a file larger than the read buffer hashes like the buffer") {
  std::string content;
  for (size_t i = 0; i < (3u << 20) + 7; ++i) content += static_cast<char>((i * 131 + i / 977) & 0xff);
  std::string path = temp_file(content);
  FileHash h = sha256_file(path);
  unlink(path.c_str());
  REQUIRE(h.ok());
  CHECK(h.hex == sha256_hex(content));
  CHECK(h.size == content.size());
}

TEST_CASE("sha256: incremental updates in odd pieces equal one call, and finish resets") {
  std::string data(1'000'000, 'a');
  Sha256 h;
  for (size_t off = 0, step = 1; off < data.size(); off += step, step = step * 3 % 65537 + 1) {
    h.update(data.data() + off, std::min(step, data.size() - off));
  }
  CHECK(h.finish() == kMillionA);
  h.update("abc", 3);
  CHECK(h.finish() == kAbc);
  CHECK(h.finish() == kEmpty);
}

TEST_CASE("sha256: a missing file is an error value") {
  FileHash h = sha256_file("/nonexistent-sluice/x");
  CHECK_FALSE(h.ok());
  CHECK(h.error == "cannot open '/nonexistent-sluice/x': No such file or directory");
  CHECK(h.hex.empty());
}

TEST_CASE("sha256: hex is lowercase, two digits a byte") {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  CHECK(to_hex(bytes, 4) == "000fa0ff");
}
