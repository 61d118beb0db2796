// Ordered, buffered output to a file descriptor (stdout or stderr).
//
// print, io.write and stdout:write all append here, so their output keeps the
// order in which the script produced it. The buffer is written out when the
// scheduler goes idle, when it grows past kHighWater, and at exit.
#pragma once

#include <cstddef>
#include <string>

namespace luasync {

class Output {
 public:
  explicit Output(int fd, size_t high_water) : fd_(fd), high_water_(high_water) {}

  void Write(const char* p, size_t n) {
    if (broken_) return;
    buf_.append(p, n);
    if (buf_.size() >= high_water_) Flush();
  }
  /// Writes everything buffered. Returns false once the reader is gone (EPIPE).
  bool Flush();
  /// True after a write failed with EPIPE: the reader went away.
  bool broken() const { return broken_; }
  size_t pending() const { return buf_.size(); }
  int fd() const { return fd_; }

 private:
  int fd_;
  size_t high_water_;
  bool broken_ = false;
  std::string buf_;
};

}  // namespace luasync
