#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <utility>

namespace peernet::cli {
namespace {

// Units of 1024: one decimal below GiB ("1.0 KiB", "200.0 MiB"), two from GiB up ("1.50 GiB",
// where one decimal would move in steps of 100 MiB). A uint64 ends in EiB, at "16.00 EiB".
constexpr std::array<std::string_view, 7> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
constexpr std::size_t kFirstTwoDecimalUnit = 3;

// The terminal line: the bar grows up to kBarMax cells and is left out below kBarMin; the label
// gives way to the bar down to kLabelMin columns.
constexpr int kBarMax = 30;
constexpr int kBarMin = 8;
constexpr int kBarFrame = 3;  // " [" and "]"
constexpr int kLabelMin = 12;
// Columns kept for the fields that change as the transfer goes, so that the bar and the columns
// after it stay put from one redraw to the next.
constexpr int kPercentColumns = 4;  // "100%"
constexpr int kRateColumns = 11;    // "123.4 MiB/s"
constexpr int kEtaColumns = 5;      // "59:59"

constexpr std::string_view kEllipsis = "\u2026";
constexpr int kDefaultWidth = 80;

/// round(bytes / 2^shift) with `decimals` decimals, as an integer count of 10^-decimals, rounding
/// halves up. Exact: long division, one decimal digit at a time.
std::uint64_t scaled(std::uint64_t bytes, unsigned shift, int decimals) {
  const std::uint64_t mask = (std::uint64_t{1} << shift) - 1;
  std::uint64_t value = bytes >> shift;
  std::uint64_t rest = bytes & mask;
  for (int i = 0; i < decimals; ++i) {
    rest *= 10;  // rest < 2^60 (shift <= 60), so this does not overflow
    value = value * 10 + (rest >> shift);
    rest &= mask;
  }
  if (rest >= (std::uint64_t{1} << (shift - 1))) {
    ++value;
  }
  return value;
}

/// Reads one UTF-8 sequence at `at`; returns its length, or 0 when it is not valid UTF-8
/// (truncated, overlong, a surrogate or beyond U+10FFFF).
std::size_t utf8_sequence(std::string_view text, std::size_t at, char32_t& code_point) {
  const auto lead = static_cast<unsigned char>(text[at]);
  std::size_t length = 0;
  char32_t smallest = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  if ((lead & 0xE0U) == 0xC0) {
    length = 2;
    code_point = lead & 0x1FU;
    smallest = 0x80;
  } else if ((lead & 0xF0U) == 0xE0) {
    length = 3;
    code_point = lead & 0x0FU;
    smallest = 0x800;
  } else if ((lead & 0xF8U) == 0xF0) {
    length = 4;
    code_point = lead & 0x07U;
    smallest = 0x10000;
  } else {
    return 0;
  }
  if (at + length > text.size()) {
    return 0;
  }
  for (std::size_t i = 1; i < length; ++i) {
    const auto next = static_cast<unsigned char>(text[at + i]);
    if ((next & 0xC0U) != 0x80) {
      return 0;
    }
    code_point = (code_point << 6U) | (next & 0x3FU);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (code_point < smallest || code_point > 0x10FFFF || surrogate) {
    return 0;
  }
  return length;
}

/// What a terminal would obey rather than show: C0 and C1 controls, DEL, and the bidirectional
/// overrides that make a name read as another.
bool is_control(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

/// The label as it may be printed: a file name can come from the other peer, so controls and
/// bytes that are not UTF-8 become '?'. What is left is valid UTF-8, one column per code point.
std::string printable(std::string text) {
  // In place: a replacement is never longer than what it replaces.
  std::size_t kept = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    char32_t code_point = 0;
    const std::size_t length = utf8_sequence(text, at, code_point);
    if (length == 0 || is_control(code_point)) {
      text[kept++] = '?';
      at += std::max<std::size_t>(length, 1);
    } else {
      std::memmove(text.data() + kept, text.data() + at, length);
      kept += length;
      at += length;
    }
  }
  text.resize(kept);
  return text;
}

/// Columns taken by valid UTF-8 text: its code points (wide CJK characters count as one).
int columns(std::string_view text) {
  return static_cast<int>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0U) != 0x80;
  }));
}

/// The byte offset where code point number `index` of valid UTF-8 text starts (or its size).
std::size_t offset_of(std::string_view text, int index) {
  int seen = 0;
  for (std::size_t at = 0; at < text.size(); ++at) {
    if ((static_cast<unsigned char>(text[at]) & 0xC0U) != 0x80) {
      if (seen == index) {
        return at;
      }
      ++seen;
    }
  }
  return text.size();
}

/// At most `budget` columns of `text`, its middle replaced by "…" when it is too long: both ends
/// of a file name tell it apart (the directory, the extension).
std::string shorten(std::string_view text, int budget) {
  const int have = columns(text);
  if (have <= budget) {
    return std::string(text);
  }
  if (budget <= 0) {
    return {};
  }
  const int tail = (budget - 1) / 2;
  const int head = budget - 1 - tail;
  std::string out(text.substr(0, offset_of(text, head)));
  out += kEllipsis;
  out += text.substr(offset_of(text, have - tail));
  return out;
}

/// Exactly `width` columns: cut at a code point, or padded with spaces.
std::string fit(std::string text, int width) {
  const int have = columns(text);
  if (have > width) {
    text.resize(offset_of(text, std::max(width, 0)));
  } else {
    text.append(static_cast<std::size_t>(width - have), ' ');
  }
  return text;
}

std::string pad_left(const std::string& text, int width) {
  const int have = columns(text);
  return have >= width ? text : std::string(static_cast<std::size_t>(width - have), ' ') + text;
}

std::string pad_right(const std::string& text, int width) {
  const int have = columns(text);
  return have >= width ? text : text + std::string(static_cast<std::size_t>(width - have), ' ');
}

/// The widest format_bytes of a count from 0 to `total`: the total itself, or the longest
/// figure of the unit below it ("1023 B", "1023.9 KiB", "1023.99 GiB").
int widest_count(std::uint64_t total) {
  int widest = columns(format_bytes(total));
  if (total >= (std::uint64_t{1} << 40U)) {
    widest = std::max(widest, 11);
  } else if (total >= (std::uint64_t{1} << 20U)) {
    widest = std::max(widest, 10);
  } else if (total >= (std::uint64_t{1} << 10U)) {
    widest = std::max(widest, 6);
  }
  return widest;
}

/// Where the transfer stands at one instant.
struct Figures {
  int percent = 100;
  double fraction = 1.0;                                   ///< done / total, in [0, 1]
  double rate = std::numeric_limits<double>::quiet_NaN();  ///< bytes/s; NaN while unknown
  double eta = 0.0;                                        ///< seconds; NaN while unknown
  double elapsed = 0.0;                                    ///< seconds since the start
};

Figures figures_at(std::uint64_t done, std::uint64_t total, std::uint64_t already, double elapsed) {
  Figures figures;
  figures.elapsed = elapsed;
  if (done < total) {
    figures.fraction = static_cast<double>(done) / static_cast<double>(total);
    // Never 100% (nor a full bar) before the end, whatever the rounding of huge counts.
    figures.percent = std::min(static_cast<int>(figures.fraction * 100.0), 99);
  }
  // Bytes present before the transfer began did not travel: they must not count as speed.
  const std::uint64_t moved = done > already ? done - already : 0;
  if (moved > 0 && elapsed > 0.0) {
    figures.rate = static_cast<double>(moved) / elapsed;
  }
  const std::uint64_t remaining = total > done ? total - done : 0;
  if (remaining > 0) {
    // NaN (shown "--:--") while the rate is unknown.
    figures.eta = static_cast<double>(remaining) / figures.rate;
  }
  return figures;
}

std::string bar(double fraction, int cells) {
  auto filled = static_cast<int>(fraction * cells);
  if (fraction < 1.0) {
    filled = std::min(filled, cells - 1);
  }
  filled = std::clamp(filled, 0, cells);
  return std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(cells - filled), '-');
}

std::string join(std::initializer_list<std::string_view> parts) {
  std::string joined;
  for (const std::string_view part : parts) {
    joined += part;
  }
  return joined;
}

/// The label, then the bar if there is room for kBarMin cells, then `stats`. The label keeps its
/// length while the bar still gets kBarMin cells, and gives way to the bar down to kLabelMin.
std::string arrange(const std::string& label, const std::string& stats, double fraction,
                    int available) {
  const int room = available - columns(stats);
  const int label_columns = columns(label);
  const int label_budget = std::min(label_columns, std::max(kLabelMin, room - kBarFrame - kBarMin));
  const int cells = std::min(kBarMax, room - label_budget - kBarFrame);
  if (cells >= kBarMin) {
    return shorten(label, label_budget) + " [" + bar(fraction, cells) + "]" + stats;
  }
  return shorten(label, std::min(label_columns, std::max(kLabelMin, room))) + stats;
}

/// "label [#####-----]  45%   90.0 MiB/200.0 MiB   23.4 MiB/s  ETA 0:05", exactly `available`
/// columns. The layout depends on the label, the total and the width, not on the figures that
/// change, so nothing jumps about from one redraw to the next. A narrow terminal loses whole
/// fields (the amounts, then the rate, then the ETA), never half of one: "ETA 1:" would lie. Only
/// a line too narrow for the label and the percentage is cut.
std::string terminal_line(const std::string& label, std::uint64_t done, std::uint64_t total,
                          const Figures& figures, int available) {
  const std::string percent =
      " " + pad_left(std::to_string(figures.percent) + "%", kPercentColumns);
  const std::string amounts =
      "  " + pad_left(format_bytes(done), widest_count(total)) + "/" + format_bytes(total);
  const std::string rate = "  " + pad_left(format_rate(figures.rate), kRateColumns);
  const std::string eta = "  ETA " + pad_right(format_duration(figures.eta), kEtaColumns);

  std::string line;
  for (const std::string& stats : {join({percent, amounts, rate, eta}), join({percent, rate, eta}),
                                   join({percent, eta}), percent}) {
    line = arrange(label, stats, figures.fraction, available);
    if (columns(line) <= available) {
      break;
    }
  }
  return fit(line, available);
}

/// "footage/a.mkv: 45% 90.0 MiB of 200.0 MiB, 23.4 MiB/s, 0:05 left"
std::string plain_line(const std::string& label, std::uint64_t done, std::uint64_t total,
                       const Figures& figures) {
  return label + ": " + std::to_string(figures.percent) + "% " + format_bytes(done) + " of " +
         format_bytes(total) + ", " + format_rate(figures.rate) + ", " +
         format_duration(figures.eta) + " left";
}

/// "NAME  200.0 MiB in 0:08, 24.1 MiB/s"; "NAME  0 B" when nothing travelled.
std::string final_line(const std::string& label, std::uint64_t done, std::uint64_t already,
                       const Figures& figures) {
  std::string line = label + "  " + format_bytes(done);
  if (done > already) {
    line += " in " + format_duration(figures.elapsed);
    if (!std::isnan(figures.rate)) {
      line += ", " + format_rate(figures.rate);
    }
  }
  return line;
}

void write(std::FILE* out, const std::string& text) {
  // Progress is a courtesy: a full disk or a closed pipe must not fail the transfer.
  static_cast<void>(std::fwrite(text.data(), 1, text.size(), out));
  static_cast<void>(std::fflush(out));
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) {
    return std::to_string(bytes) + " B";
  }
  std::size_t unit = 1;
  while (unit + 1 < kUnits.size() && bytes >> (10 * (unit + 1)) != 0) {
    ++unit;
  }
  const auto decimals_of = [](std::size_t u) { return u >= kFirstTwoDecimalUnit ? 2 : 1; };
  const auto shift_of = [](std::size_t u) { return static_cast<unsigned>(10 * u); };
  int decimals = decimals_of(unit);
  std::uint64_t one = decimals == 2 ? 100 : 10;
  std::uint64_t value = scaled(bytes, shift_of(unit), decimals);
  // 1023.96 KiB rounds to 1024.0: that is 1.0 MiB.
  if (value >= 1024 * one && unit + 1 < kUnits.size()) {
    ++unit;
    decimals = decimals_of(unit);
    one = decimals == 2 ? 100 : 10;
    value = scaled(bytes, shift_of(unit), decimals);
  }
  std::string fraction = std::to_string(value % one);
  fraction.insert(0, static_cast<std::size_t>(decimals) - fraction.size(), '0');
  return std::to_string(value / one) + "." + fraction + " " + std::string(kUnits[unit]);
}

std::string format_rate(double bytes_per_second) {
  // Negative and NaN fail this test too.
  if (!(bytes_per_second > 0.0) || std::isinf(bytes_per_second)) {
    return "0 B/s";
  }
  constexpr double kTwoToThe64 = 18446744073709551616.0;
  const std::uint64_t bytes = bytes_per_second >= kTwoToThe64
                                  ? std::numeric_limits<std::uint64_t>::max()
                                  : static_cast<std::uint64_t>(std::round(bytes_per_second));
  return format_bytes(bytes) + "/s";
}

std::string format_duration(double seconds) {
  // Rounded to the nearest second. A span of more than 30 million years is as unknown as NaN
  // (and would not fit the integer it is counted in).
  constexpr double kLongest = 1e15;
  if (!std::isfinite(seconds) || seconds < 0.0 || seconds >= kLongest) {
    return "--:--";
  }
  const auto total = static_cast<std::int64_t>(std::llround(seconds));
  const std::int64_t hours = total / 3600;
  const std::int64_t minutes = total / 60 % 60;
  const std::int64_t secs = total % 60;
  const auto two_digits = [](std::int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  if (hours > 0) {
    return std::to_string(hours) + ":" + two_digits(minutes) + ":" + two_digits(secs);
  }
  return std::to_string(minutes) + ":" + two_digits(secs);
}

Progress::Progress(std::FILE* out, std::string label, std::uint64_t total, std::uint64_t already,
                   Options options)
    : out_(out),
      label_(printable(std::move(label))),
      total_(total),
      already_(already),
      done_(already),
      options_(std::move(options)) {
  if (!options_.now) {
    options_.now = [] { return Clock::now(); };
  }
  start_ = options_.now();
  last_draw_ = start_;
}

bool Progress::is_terminal(std::FILE* file, int& width) {
  width = kDefaultWidth;
  if (file == nullptr) {
    return false;
  }
  const int fd = ::fileno(file);
  if (fd < 0 || ::isatty(fd) == 0) {
    return false;
  }
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    width = size.ws_col;
  }
  return true;
}

void Progress::add(std::uint64_t bytes) {
  // Saturates rather than wraps: a count past 16 EiB is a caller's bug, not a reason to lie.
  done_ = bytes > std::numeric_limits<std::uint64_t>::max() - done_
              ? std::numeric_limits<std::uint64_t>::max()
              : done_ + bytes;
  if (finished_) {
    return;
  }
  const Clock::time_point now = options_.now();
  if (options_.terminal) {
    // The first add draws at once, so that a person sees the transfer has begun.
    if (drawn_ && now - last_draw_ < options_.redraw_every) {
      return;
    }
  } else {
    // A log gets its first line only once a line is due, so a short transfer logs one line.
    if (now - (drawn_ ? last_draw_ : start_) < options_.plain_line_every) {
      return;
    }
  }
  draw(now);
}

void Progress::draw(Clock::time_point now) {
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const Figures figures = figures_at(done_, total_, already_, elapsed);
  if (options_.terminal) {
    write(out_,
          "\r" + terminal_line(label_, done_, total_, figures, std::max(options_.width - 1, 0)));
  } else {
    write(out_, plain_line(label_, done_, total_, figures) + "\n");
  }
  last_draw_ = now;
  drawn_ = true;
}

void Progress::finish() {
  if (finished_) {
    return;
  }
  finished_ = true;
  const double elapsed = std::chrono::duration<double>(options_.now() - start_).count();
  const std::string line =
      final_line(label_, done_, already_, figures_at(done_, total_, already_, elapsed));
  if (options_.terminal) {
    // Padded over the whole bar, but never cut: this line stays in the scrollback.
    write(out_, "\r" + pad_right(line, options_.width - 1) + "\n");
  } else {
    write(out_, line + "\n");
  }
}

void Progress::abandon() {
  if (finished_) {
    return;
  }
  finished_ = true;
  if (options_.terminal && drawn_) {
    write(out_, "\r" + std::string(static_cast<std::size_t>(std::max(options_.width - 1, 0)), ' ') +
                    "\r");
  }
}

}  // namespace peernet::cli
