#pragma once
// The wire between the engine and a plugin worker (`sluice __plugin-worker`):
// one AF_UNIX stream socket, on fd 3 in the worker, carrying frames — a
// 4-byte length in host byte order, then that many bytes of one JSON object
// with a member "t" naming the message. See docs/plugins.md,
// "Isolation" for the messages.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice::engine::wire {

constexpr int kWorkerFd = 3;                        // the socket, in the worker
constexpr uint32_t kMaxFrame = 64u << 20;           // a larger length is a broken peer
constexpr const char* kWorkerCommand = "__plugin-worker";

// Sends one frame (blocking, no SIGPIPE). False once the peer is gone.
bool send(int fd, const nlohmann::json& message);

// Collects frames from a socket, for a reader that polls it.
class FrameReader {
 public:
  enum class Fill { Data, WouldBlock, Closed };
  // Reads what the socket holds (non-blocking sockets return WouldBlock when
  // drained; blocking ones block for at least one byte).
  Fill fill(int fd);
  // Pops one complete frame; false when none is complete. A frame that is
  // not a JSON object, or too long, sets `broken` (and returns false).
  bool next(nlohmann::json& message);
  bool broken() const { return broken_; }

 private:
  std::string buf_;
  bool broken_ = false;
};

// Blocks until one frame arrives; false on EOF, error or a broken frame.
bool receive(int fd, FrameReader& reader, nlohmann::json& message);

}  // namespace sluice::engine::wire
