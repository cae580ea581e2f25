#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "peernet/error.h"

namespace peernet::lib {

/// The thread a Client runs everything on: signaling, WebRTC events and user callbacks.
class Loop {
 public:
  Loop() : thread_([this] { io_.run(); }) {}
  /// Stops the thread; call after everything on it is closed.
  ~Loop() { stop(); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::any_io_executor executor() { return io_.get_executor(); }
  bool on_loop() const { return std::this_thread::get_id() == thread_.get_id(); }

  /// Runs `step` on the loop and returns its result: at once when called on the loop, else
  /// waiting for it (exceptions travel back).
  template <class Step>
  auto call(Step step) -> std::invoke_result_t<Step&> {
    if (on_loop() || stopped_) {
      return step();  // after stop() no other thread runs anything of ours
    }
    std::packaged_task<std::invoke_result_t<Step&>()> task(std::move(step));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  void stop() {
    if (thread_.joinable() && !stopped_) {
      work_.reset();
      io_.stop();
      if (on_loop()) {
        // The thread cannot join itself, and its io_context dies with this object.
        std::fputs("peernet: a Client was destroyed inside one of its own callbacks\n", stderr);
        std::abort();
      }
      thread_.join();
      stopped_ = true;
    }
  }

 private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread thread_;
  std::atomic<bool> stopped_ = false;  // set by the thread that owns the Client, read by any
};

}  // namespace peernet::lib
