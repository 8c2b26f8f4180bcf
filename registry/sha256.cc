#include "registry/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

namespace sluice::registry {
namespace {

constexpr size_t kReadSize = size_t{1} << 20;  // 1 MiB: measured best (bench/hash.sh)

// Fetched once: EVP_sha256() would make OpenSSL 3 look the algorithm up in
// its provider tables on every init.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

EVP_MD_CTX* new_ctx() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || sha256_md() == nullptr || EVP_DigestInit_ex2(ctx, sha256_md(), nullptr) != 1) {
    // Only possible when OpenSSL itself is broken or out of memory.
    EVP_MD_CTX_free(ctx);
    throw std::bad_alloc();
  }
  return ctx;
}

std::string finish_ctx(EVP_MD_CTX* ctx) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_DigestInit_ex2(ctx, sha256_md(), nullptr);
  return to_hex(out, n);
}

}  // namespace

std::string to_hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(n * 2, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return s;
}

Sha256::Sha256() : ctx_(new_ctx()) {}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(const void* data, size_t n) { EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n); }
std::string Sha256::finish() { return finish_ctx(static_cast<EVP_MD_CTX*>(ctx_)); }

std::string sha256_hex(std::string_view data) {
  // One context per thread, reset by finish_ctx: EVP_Digest allocates and
  // frees one per call, half the cost of hashing a short text (cache keys
  // hash several per step).
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(new_ctx(), &EVP_MD_CTX_free);
  EVP_DigestUpdate(ctx.get(), data.data(), data.size());
  return finish_ctx(ctx.get());
}

FileHash sha256_fd(int fd, std::string_view name) {
  FileHash r;
  // One buffer per thread: a tree of many small files does not allocate 1 MiB each.
  thread_local std::unique_ptr<unsigned char[]> buf(new unsigned char[kReadSize]);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Sha256 h;
  off_t off = 0;
  for (;;) {
    ssize_t got = pread(fd, buf.get(), kReadSize, off);
    if (got < 0) {
      if (errno == EINTR) continue;
      r.error = "cannot read '" + std::string(name) + "': " + std::strerror(errno);
      return r;
    }
    if (got == 0) break;
    h.update(buf.get(), static_cast<size_t>(got));
    off += got;
  }
  r.hex = h.finish();
  r.size = static_cast<uint64_t>(off);
  return r;
}

FileHash sha256_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    FileHash r;
    r.error = "cannot open '" + path + "': " + std::strerror(errno);
    return r;
  }
  FileHash r = sha256_fd(fd, path);
  close(fd);
  return r;
}

}  // namespace sluice::registry
