#pragma once
// SHA-256 through OpenSSL's EVP interface (its assembly picks the best path
// for the CPU: SHA-NI, AVX2, ...). Digests are 64 lowercase hex digits.
// Errors are values: nothing here throws for I/O failures or exits.
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::registry {

// SHA-256 of a buffer.
std::string sha256_hex(std::string_view data);

// The outcome of hashing a file: `hex` and `size` when `error` is empty.
struct FileHash {
  std::string hex;
  uint64_t size = 0;
  std::string error;  // "cannot read 'path': reason"; empty on success
  bool ok() const { return error.empty(); }
};

// Streams an open file descriptor from offset 0 to its end with large
// pread()s (1 MiB) and sequential read-ahead advice. The fd is not closed.
// `name` only labels error messages.
FileHash sha256_fd(int fd, std::string_view name);

// Opens `path` (following symlinks) and hashes it as sha256_fd does.
FileHash sha256_file(const std::string& path);

// Incremental hashing for callers that see the bytes anyway (e.g. while
// copying them). Not copyable; one thread at a time.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  // Returns the hex digest; the object is reset and can be reused.
  std::string finish();

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so this header needs no OpenSSL
};

// Lowercase hex of raw bytes (exposed for tests and the store).
std::string to_hex(const unsigned char* bytes, size_t n);

}  // namespace sluice::registry
