#pragma once

#include <utility>
#include <variant>

namespace peernet {

/// A value or the error that prevented it: what code returns instead of throwing. The daemon
/// uses it with its ApiError (core::Result), libpeernet with peernet::Error (lib::Result).
template <typename T, typename E>
class [[nodiscard]] BasicResult {
 public:
  BasicResult(T value) : state_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  BasicResult(E error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

  const E& error() const& { return std::get<1>(state_); }
  E&& error() && { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, E> state_;
};

}  // namespace peernet
