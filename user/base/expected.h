// Errors as values: an Expected<T> holds a T or a message that says what failed and what to
// do about it. Nothing here throws.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace netprof {

struct Error {
  std::string message;
};

// "what: strerror(err)" - the shape of every syscall failure message.
Error errno_error(const std::string& what, int err);

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}  // NOLINT: implicit on purpose
  Expected(Error error) : state_(std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  const std::string& error() const { return std::get<1>(state_).message; }
  Error take_error() { return std::move(std::get<1>(state_)); }

 private:
  std::variant<T, Error> state_;
};

struct Ok {};
using Status = Expected<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace netprof
