// The input format shared by the connection-level fuzz targets (tracker, h2, tls): after the
// target's own leading byte, a list of ops. An op byte's high nibble advances the clock (by 0
// to 15 ns: time sometimes stands still), its low three bits say what happens, bit 3 is a flag:
//   0-2 client bytes, 3-5 server bytes: a length byte follows, then that many bytes
//       (255 = the rest of the input in one piece; a length past the end is cut to it)
//   6   target-defined (a half-close, an upstream failure)
//   7   the connection closes (flag: by a reset)
// Decoding lives here once so the seeds (fuzz/make_*seeds.py) mean the same to every target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "http/exchange.h"

namespace netprof::fuzz {

struct ConnectionOp {
  enum class Kind { kClientBytes, kServerBytes, kSix, kClose, kTruncated } kind;
  bool flag = false;            // bit 3 of the op byte
  std::span<const char> bytes;  // for kClientBytes / kServerBytes
};

class ConnectionOps {
 public:
  ConnectionOps(const uint8_t* data, size_t size, size_t start)
      : data_(data), size_(size), at_(start) {}

  // The next op, the clock advanced by it; false when the input is used up.
  bool next(ConnectionOp& op, MonoNanos& now) {
    if (at_ >= size_) return false;
    const uint8_t byte = data_[at_++];
    now += byte >> 4;
    op.flag = (byte & 8) != 0;
    op.bytes = {};
    switch (byte & 7) {
      case 6:
        op.kind = ConnectionOp::Kind::kSix;
        return true;
      case 7:
        op.kind = ConnectionOp::Kind::kClose;
        return true;
      default:
        break;
    }
    if (at_ >= size_) {  // a bytes op without its length: nothing arrives
      op.kind = ConnectionOp::Kind::kTruncated;
      return true;
    }
    size_t len = data_[at_++];
    if (len == 255 && at_ < size_) len = size_ - at_;
    if (len > size_ - at_) len = size_ - at_;
    op.kind = (byte & 7) < 3 ? ConnectionOp::Kind::kClientBytes : ConnectionOp::Kind::kServerBytes;
    op.bytes = {reinterpret_cast<const char*>(data_ + at_), len};
    at_ += len;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_;
};

// What play() saw: the bytes it fed each side, and whether op 7 closed the connection.
struct Played {
  uint64_t client_bytes = 0;
  uint64_t server_bytes = 0;
  bool closed = false;
};

// The one loop of the connection-level targets: runs the ops on `tracker` (on_client_bytes,
// on_server_bytes, on_connection_closed) until the input is used up or op 7 closed it (by a
// reset with the flag). `before(op, now, played)` sees each op first: op 6 is the target's
// alone, and a target may feed bytes of its own there (counted in `played`). `now` ends at the
// clock of the last op.
template <typename Tracker, typename Before>
Played play(ConnectionOps& ops, Tracker& tracker, MonoNanos& now, Before before) {
  Played played;
  ConnectionOp op;
  while (!played.closed && ops.next(op, now)) {
    before(op, now, played);
    switch (op.kind) {
      case ConnectionOp::Kind::kClientBytes:
        played.client_bytes += op.bytes.size();
        tracker.on_client_bytes(op.bytes, now);
        break;
      case ConnectionOp::Kind::kServerBytes:
        played.server_bytes += op.bytes.size();
        tracker.on_server_bytes(op.bytes, now);
        break;
      case ConnectionOp::Kind::kClose:
        tracker.on_connection_closed(now, op.flag);
        played.closed = true;
        break;
      case ConnectionOp::Kind::kSix:
      case ConnectionOp::Kind::kTruncated:
        break;
    }
  }
  return played;
}

}  // namespace netprof::fuzz
