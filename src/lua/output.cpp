#include "lua/output.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

namespace luasync {

bool Output::Flush() {
  size_t off = 0;
  while (off < buf_.size() && !broken_) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n >= 0) {
      off += static_cast<size_t>(n);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      // The descriptor is non-blocking (shared with a libuv handle): wait for room.
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, -1);
    } else {
      broken_ = true;  // EPIPE and friends: the reader is gone; drop the rest
    }
  }
  buf_.clear();
  return !broken_;
}

}  // namespace luasync
