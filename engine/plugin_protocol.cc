#include "engine/plugin_protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::engine::wire {

bool send(int fd, const nlohmann::json& message) {
  const std::string body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (body.size() > kMaxFrame) return false;
  std::string frame(sizeof(uint32_t), '\0');
  const auto len = static_cast<uint32_t>(body.size());
  std::memcpy(frame.data(), &len, sizeof len);
  frame += body;
  const char* p = frame.data();
  size_t left = frame.size();
  while (left > 0) {
    ssize_t n = ::send(fd, p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

FrameReader::Fill FrameReader::fill(int fd) {
  char chunk[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return Fill::Data;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Fill::WouldBlock;
    return Fill::Closed;  // EOF or a reset
  }
}

bool FrameReader::next(nlohmann::json& message) {
  if (broken_ || buf_.size() < sizeof(uint32_t)) return false;
  uint32_t len = 0;
  std::memcpy(&len, buf_.data(), sizeof len);
  if (len > kMaxFrame) {
    broken_ = true;
    return false;
  }
  if (buf_.size() < sizeof len + len) return false;
  message = nlohmann::json::parse(buf_.begin() + sizeof len, buf_.begin() + sizeof len + len, nullptr, false);
  buf_.erase(0, sizeof len + len);
  if (message.is_discarded() || !message.is_object()) {
    broken_ = true;
    return false;
  }
  return true;
}

bool receive(int fd, FrameReader& reader, nlohmann::json& message) {
  for (;;) {
    if (reader.next(message)) return true;
    if (reader.broken()) return false;
    if (reader.fill(fd) != FrameReader::Fill::Data) return false;
  }
}

}  // namespace sluice::engine::wire
