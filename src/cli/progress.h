#pragma once

// Progress of a transfer for a person: on a terminal, one line redrawn in place with a bar, the
// bytes done, the rate and the time left; anywhere else (a log, a pipe), a plain line now and
// then, so that logs stay readable.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace peernet::cli {

/// "0 B", "1023 B", "1.0 KiB", "64.0 KiB", "200.0 MiB", "1.50 GiB" (binary units; three
/// significant digits from KiB up).
std::string format_bytes(std::uint64_t bytes);
/// format_bytes of the rate, then "/s": "23.4 MiB/s".
std::string format_rate(double bytes_per_second);
/// "0:07", "12:03", "1:02:03"; "--:--" when unknown (negative or not finite).
std::string format_duration(double seconds);

class Progress {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    bool terminal = false;  ///< redraw one line with '\r' (true), or print plain lines (false)
    int width = 80;         ///< the terminal's columns; the line never exceeds width - 1
    std::chrono::milliseconds redraw_every{100};                           ///< on a terminal
    std::chrono::milliseconds plain_line_every{5000};                      ///< elsewhere
    std::function<Clock::time_point()> now = [] { return Clock::now(); };  ///< tests inject time
  };

  /// Reports the transfer of `label` (a file name) of `total` bytes, of which `already` were
  /// present before it began (a resumed transfer: they count as done but not towards the rate).
  Progress(std::FILE* out, std::string label, std::uint64_t total, std::uint64_t already,
           Options options);
  /// True when `file` is a terminal; `width` gets its column count (80 when unknown).
  static bool is_terminal(std::FILE* file, int& width);

  /// `bytes` more arrived (or left). Draws when a redraw or plain line is due.
  void add(std::uint64_t bytes);
  /// The last line: "NAME  200.0 MiB in 0:08, 24.1 MiB/s" (on a terminal it replaces the bar and
  /// ends with '\n'). Idempotent.
  void finish();
  /// Clears the bar (terminal) so that an error message starts on a clean line. Idempotent.
  void abandon();

  std::uint64_t done() const noexcept { return done_; }

 private:
  void draw(Clock::time_point now);

  std::FILE* out_;
  std::string label_;
  std::uint64_t total_;
  std::uint64_t already_;
  std::uint64_t done_;
  Options options_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace peernet::cli
