// Buffers for bytes a relay direction could not write yet. Most reads are written at once
// straight from the loop's scratch buffer, so a connection holds a buffer only while its
// peer is slow; idle connections hold none. Freed buffers are kept for reuse, up to a bound.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace netprof {

class BufferPool {
 public:
  explicit BufferPool(size_t buffer_bytes, size_t max_idle = 256)
      : buffer_bytes_(buffer_bytes), max_idle_(max_idle) {}

  size_t buffer_bytes() const { return buffer_bytes_; }

  std::unique_ptr<char[]> take() {
    if (idle_.empty()) return std::make_unique<char[]>(buffer_bytes_);
    auto buffer = std::move(idle_.back());
    idle_.pop_back();
    return buffer;
  }

  void give_back(std::unique_ptr<char[]> buffer) {
    if (buffer && idle_.size() < max_idle_) idle_.push_back(std::move(buffer));
  }

 private:
  size_t buffer_bytes_;
  size_t max_idle_;
  std::vector<std::unique_ptr<char[]>> idle_;
};

// The unwritten tail of one read: at most one pool buffer.
class PooledBuffer {
 public:
  bool empty() const { return begin_ == end_; }
  std::span<const char> view() const { return {data_.get() + begin_, end_ - begin_}; }

  // Holds `bytes` (which must fit one pool buffer). Only called when empty.
  void assign(BufferPool& pool, std::span<const char> bytes) {
    if (!data_) data_ = pool.take();
    std::memcpy(data_.get(), bytes.data(), bytes.size());
    begin_ = 0;
    end_ = bytes.size();
  }

  void consume(BufferPool& pool, size_t n) {
    begin_ += n;
    if (begin_ == end_) release(pool);
  }

  void release(BufferPool& pool) {
    pool.give_back(std::move(data_));
    begin_ = end_ = 0;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t begin_ = 0, end_ = 0;
};

}  // namespace netprof
