#include "cli/progress.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace peernet::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kTiB = 1024 * kGiB;

/// Code points of UTF-8 text: the columns the progress line is measured in.
int columns(std::string_view text) {
  int count = 0;
  for (const char c : text) {
    count += (static_cast<unsigned char>(c) & 0xC0U) != 0x80 ? 1 : 0;
  }
  return count;
}

/// True when no code point of `text` was cut: every lead byte has all its continuation bytes.
bool whole_utf8(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const auto lead = static_cast<unsigned char>(text[at]);
    std::size_t length = 1;
    if ((lead & 0xE0U) == 0xC0) {
      length = 2;
    } else if ((lead & 0xF0U) == 0xE0) {
      length = 3;
    } else if ((lead & 0xF8U) == 0xF0) {
      length = 4;
    } else if (lead >= 0x80) {
      return false;
    }
    if (at + length > text.size()) {
      return false;
    }
    for (std::size_t i = 1; i < length; ++i) {
      if ((static_cast<unsigned char>(text[at + i]) & 0xC0U) != 0x80) {
        return false;
      }
    }
    at += length;
  }
  return true;
}

/// The lines drawn in place: what follows each '\r'.
std::vector<std::string> redraws(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t at = text.find('\r');
  while (at != std::string::npos) {
    const std::size_t next = text.find('\r', at + 1);
    lines.push_back(text.substr(at + 1, next == std::string::npos ? next : next - at - 1));
    at = next;
  }
  return lines;
}

std::string spaces(std::size_t count) {
  std::string text(count, ' ');
  return text;
}

struct CloseFile {
  void operator()(std::FILE* file) const {
    // The C library's own handle: there is no gsl::owner<> to hand it over with.
    static_cast<void>(std::fclose(file));  // NOLINT(cppcoreguidelines-owning-memory)
  }
};
using File = std::unique_ptr<std::FILE, CloseFile>;

/// A FILE* the test reads back: what a person would have seen.
class Capture {
 public:
  std::FILE* file() const { return file_.get(); }

  /// Everything written so far. Reads only what Progress flushed, so it checks the flushing too.
  std::string text() const {
    const int fd = ::fileno(file_.get());
    const off_t size = ::lseek(fd, 0, SEEK_END);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (size > 0 && ::pread(fd, text.data(), text.size(), 0) != size) {
      ADD_FAILURE() << "cannot read the capture back";
    }
    return text;
  }

 private:
  File file_{std::tmpfile()};
};

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(out_.file(), nullptr); }

  Progress::Options terminal(int width) {
    Progress::Options options = plain();
    options.terminal = true;
    options.width = width;
    return options;
  }

  Progress::Options plain() {
    Progress::Options options;
    options.now = [this] { return now_; };
    return options;
  }

  Capture out_;
  Progress::Clock::time_point now_{std::chrono::hours{1000}};
};

// Units

TEST(FormatBytes, KeepsTheHeaderExamplesTrue) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(64 * kKiB), "64.0 KiB");
  EXPECT_EQ(format_bytes(200 * kMiB), "200.0 MiB");
  EXPECT_EQ(format_bytes(kGiB + kGiB / 2), "1.50 GiB");
}

TEST(FormatBytes, OneDecimalBelowGibTwoFromGibUp) {
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(kMiB), "1.0 MiB");
  EXPECT_EQ(format_bytes(kGiB), "1.00 GiB");
  EXPECT_EQ(format_bytes(kTiB), "1.00 TiB");
  EXPECT_EQ(format_bytes(1024 * kTiB), "1.00 PiB");
  EXPECT_EQ(format_bytes(kTiB * 1024 * 1024), "1.00 EiB");
  EXPECT_EQ(format_bytes(std::numeric_limits<std::uint64_t>::max()), "16.00 EiB");
}

TEST(FormatBytes, RollsOverInsteadOfPrinting1024) {
  EXPECT_EQ(format_bytes(1048524), "1023.9 KiB");  // 1023.949 KiB
  EXPECT_EQ(format_bytes(1048525), "1.0 MiB");     // 1023.950 KiB would round to 1024.0
  EXPECT_EQ(format_bytes(kMiB - 1), "1.0 MiB");
  EXPECT_EQ(format_bytes(kGiB - 1), "1.00 GiB");  // 1024.0 MiB
  EXPECT_EQ(format_bytes(kTiB - 1), "1.00 TiB");  // 1024.00 GiB
  EXPECT_EQ(format_bytes(kTiB - kTiB / 1000), "1022.98 GiB");
}

TEST(FormatBytes, RoundsHalvesUp) {
  EXPECT_EQ(format_bytes(1280), "1.3 KiB");                  // 1.25 KiB exactly
  EXPECT_EQ(format_bytes(kGiB + kGiB / 8), "1.13 GiB");      // 1.125 GiB exactly
  EXPECT_EQ(format_bytes(kGiB + kGiB / 8 - 1), "1.12 GiB");  // just below the half
}

TEST(FormatRate, IsTheRoundedByteCountPerSecond) {
  EXPECT_EQ(format_rate(1.0), "1 B/s");
  EXPECT_EQ(format_rate(0.5), "1 B/s");
  EXPECT_EQ(format_rate(1023.4), "1023 B/s");
  EXPECT_EQ(format_rate(1023.6), "1.0 KiB/s");
  EXPECT_EQ(format_rate(23.4 * kMiB), "23.4 MiB/s");
  EXPECT_EQ(format_rate(1e30), "16.00 EiB/s");
}

TEST(FormatRate, UnknownOrNothingIsZero) {
  EXPECT_EQ(format_rate(0.0), "0 B/s");
  EXPECT_EQ(format_rate(0.4), "0 B/s");
  EXPECT_EQ(format_rate(-5.0), "0 B/s");
  EXPECT_EQ(format_rate(std::nan("")), "0 B/s");
  EXPECT_EQ(format_rate(std::numeric_limits<double>::infinity()), "0 B/s");
}

TEST(FormatDuration, MinutesAndSecondsUnderAnHour) {
  EXPECT_EQ(format_duration(0.0), "0:00");
  EXPECT_EQ(format_duration(7.0), "0:07");
  EXPECT_EQ(format_duration(723.0), "12:03");
  EXPECT_EQ(format_duration(3599.0), "59:59");
}

TEST(FormatDuration, HoursMinutesAndSecondsFromAnHour) {
  EXPECT_EQ(format_duration(3600.0), "1:00:00");
  EXPECT_EQ(format_duration(3723.0), "1:02:03");
  EXPECT_EQ(format_duration(36000.0), "10:00:00");
  EXPECT_EQ(format_duration(100.0 * 3600), "100:00:00");
}

TEST(FormatDuration, RoundsToTheNearestSecond) {
  EXPECT_EQ(format_duration(0.4), "0:00");
  EXPECT_EQ(format_duration(59.4), "0:59");
  EXPECT_EQ(format_duration(59.5), "1:00");
  EXPECT_EQ(format_duration(3599.5), "1:00:00");
  EXPECT_EQ(format_duration(-0.0), "0:00");
}

TEST(FormatDuration, UnknownIsDashes) {
  EXPECT_EQ(format_duration(-1.0), "--:--");
  EXPECT_EQ(format_duration(-0.1), "--:--");
  EXPECT_EQ(format_duration(std::nan("")), "--:--");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "--:--");
  EXPECT_EQ(format_duration(-std::numeric_limits<double>::infinity()), "--:--");
  EXPECT_EQ(format_duration(1e300), "--:--");  // finite, but beyond counting
}

// On a terminal

TEST_F(ProgressTest, TerminalLineShowsBarPercentAmountsRateAndEta) {
  Progress progress(out_.file(), "footage/a.mkv", 200 * kMiB, 0, terminal(80));
  now_ += 3850ms;
  progress.add(90 * kMiB);  // 23.4 MiB/s, 110 MiB to go: 4.7 s
  const std::string line =
      "footage/a.mkv [#####-------]  45%    90.0 MiB/200.0 MiB   23.4 MiB/s  ETA 0:05 ";
  EXPECT_EQ(out_.text(), "\r" + line);
  EXPECT_EQ(columns(line), 79);
}

TEST_F(ProgressTest, TerminalEtaIsUnknownUntilThereIsARate) {
  Progress progress(out_.file(), "a", 1000, 0, terminal(60));
  progress.add(500);  // no time has passed: no rate yet
  EXPECT_EQ(out_.text(), "\ra [#####------]  50%   500 B/1000 B        0 B/s  ETA --:--");
}

TEST_F(ProgressTest, TerminalDrawsOnceWithinRedrawInterval) {
  Progress progress(out_.file(), "a.bin", 1000, 0, terminal(60));
  progress.add(100);  // the first add always draws
  now_ += 50ms;
  progress.add(100);
  now_ += 49ms;
  progress.add(100);
  ASSERT_EQ(redraws(out_.text()).size(), 1U);
  EXPECT_NE(out_.text().find(" 10% "), std::string::npos);

  now_ += 1ms;  // 100 ms since the first draw
  progress.add(100);
  const std::vector<std::string> lines = redraws(out_.text());
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_NE(lines[1].find(" 40% "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("400 B/1000 B"), std::string::npos) << lines[1];
}

TEST_F(ProgressTest, TerminalLineNeverExceedsWidthWithLongUtf8Label) {
  std::string label = "видео/";
  for (int i = 0; i < 6; ++i) {
    label += "очень-длинное-имя-";
  }
  label += "🎬.mkv";
  for (int width = 1; width <= 160; ++width) {
    Capture out;
    Progress::Options options = terminal(width);
    options.redraw_every = 0ms;
    const auto start = now_;
    Progress progress(out.file(), label, 3 * kTiB, kGiB, options);
    progress.add(0);
    now_ += 1s;
    progress.add(kMiB);  // slow enough for an ETA in days
    now_ += 1s;
    progress.add(2 * kTiB);
    now_ += 100s;
    progress.add(kTiB - kGiB - kMiB);  // done
    now_ = start;

    const std::vector<std::string> lines = redraws(out.text());
    ASSERT_EQ(lines.size(), 4U);
    for (const std::string& line : lines) {
      EXPECT_EQ(columns(line), width - 1) << "width " << width << ": " << line;
      EXPECT_TRUE(whole_utf8(line)) << "width " << width << ": " << line;
      if (width >= 80) {
        EXPECT_NE(line.find("…"), std::string::npos) << line;
        EXPECT_EQ(line.rfind("видео/", 0), 0U) << line;
        EXPECT_NE(line.find("🎬.mkv ["), std::string::npos) << line;
      }
    }
  }
}

TEST_F(ProgressTest, TerminalShortensLabelInTheMiddle) {
  Progress progress(out_.file(), "видео/очень-длинное-имя-файла.mkv", 1000, 0, terminal(60));
  progress.add(500);
  // No room for a bar beside the figures: the label gets what is left, 15 columns.
  const std::string line = "видео/о…йла.mkv  50%   500 B/1000 B        0 B/s  ETA --:--";
  EXPECT_EQ(out_.text(), "\r" + line);
  EXPECT_EQ(columns(line), 59);
}

TEST_F(ProgressTest, NarrowTerminalDropsWholeFields) {
  Progress::Options options = terminal(60);
  Progress at_60(out_.file(), "footage/a.mkv", 200 * kMiB, 0, options);
  Capture narrower;
  options.width = 40;
  Progress at_40(narrower.file(), "footage/a.mkv", 200 * kMiB, 0, options);
  now_ += 3850ms;
  at_60.add(90 * kMiB);
  at_40.add(90 * kMiB);
  // 60 columns: no room for the amounts; 40: nor for the rate. The ETA is never cut in half.
  EXPECT_EQ(out_.text(), "\rfootage/a.mkv [######--------]  45%   23.4 MiB/s  ETA 0:05 ");
  EXPECT_EQ(narrower.text(), "\rfootag…a.mkv [###-----]  45%  ETA 0:05 ");
}

TEST_F(ProgressTest, LabelControlsArePrintedAsQuestionMarks) {
  // A name from the other peer must not move the cursor, clear the screen or reverse the text.
  Progress progress(out_.file(), "a\x1b[2J\r\n\xc2\x9b\xe2\x80\xae\xff.txt", 0, 0, plain());
  progress.finish();
  EXPECT_EQ(out_.text(), "a?[2J?????.txt  0 B\n");
}

TEST_F(ProgressTest, AlreadyPresentBytesDoNotInflateTheRate) {
  Progress::Options options = plain();
  options.plain_line_every = 1s;
  Progress progress(out_.file(), "f", 200 * kMiB, 100 * kMiB, options);
  EXPECT_EQ(progress.done(), 100 * kMiB);
  now_ += 1s;
  progress.add(10 * kMiB);  // 10 MiB in a second, not 110
  now_ += 1s;
  progress.add(10 * kMiB);
  progress.finish();
  EXPECT_EQ(out_.text(),
            "f: 55% 110.0 MiB of 200.0 MiB, 10.0 MiB/s, 0:09 left\n"
            "f: 60% 120.0 MiB of 200.0 MiB, 10.0 MiB/s, 0:08 left\n"
            "f  120.0 MiB in 0:02, 10.0 MiB/s\n");
}

TEST_F(ProgressTest, AlreadyPresentBytesDoNotInflateTheRateOnATerminal) {
  Progress progress(out_.file(), "f", 200 * kMiB, 150 * kMiB, terminal(100));
  now_ += 2s;
  progress.add(kMiB);
  EXPECT_NE(out_.text().find("  512.0 KiB/s  ETA 1:38 "), std::string::npos) << out_.text();
}

TEST_F(ProgressTest, FinishOnTerminalReplacesTheBarAndIsIdempotent) {
  Progress progress(out_.file(), "footage/a.mkv", 200 * kMiB, 0, terminal(80));
  progress.add(0);
  now_ += 8300ms;
  progress.add(200 * kMiB);
  const std::string before = out_.text();
  progress.finish();
  const std::string line = "footage/a.mkv  200.0 MiB in 0:08, 24.1 MiB/s";
  EXPECT_EQ(out_.text(), before + "\r" + line + spaces(79 - line.size()) + "\n");

  progress.finish();
  progress.abandon();
  now_ += 1s;
  progress.add(1);
  EXPECT_EQ(out_.text(), before + "\r" + line + spaces(79 - line.size()) + "\n");
}

TEST_F(ProgressTest, ZeroByteTotalIsComplete) {
  Progress progress(out_.file(), "empty.txt", 0, 0, terminal(80));
  progress.add(0);
  progress.finish();
  const std::string bar =
      "empty.txt [" + std::string(29, '#') + "] 100%  0 B/0 B        0 B/s  ETA 0:00 ";
  ASSERT_EQ(columns(bar), 79);
  EXPECT_EQ(out_.text(), "\r" + bar + "\rempty.txt  0 B" + spaces(79 - 14) + "\n");
}

TEST_F(ProgressTest, ZeroByteTotalPlain) {
  Progress progress(out_.file(), "empty.txt", 0, 0, plain());
  progress.add(0);
  progress.finish();
  EXPECT_EQ(out_.text(), "empty.txt  0 B\n");
}

TEST_F(ProgressTest, AbandonClearsTheBarOnce) {
  Progress progress(out_.file(), "a.bin", 1000, 0, terminal(20));
  progress.add(10);
  const std::string drawn = out_.text();
  ASSERT_EQ(redraws(drawn).size(), 1U);
  EXPECT_EQ(columns(redraws(drawn)[0]), 19);

  progress.abandon();
  EXPECT_EQ(out_.text(), drawn + "\r" + spaces(19) + "\r");
  progress.abandon();
  progress.finish();
  now_ += 1s;
  progress.add(10);
  EXPECT_EQ(out_.text(), drawn + "\r" + spaces(19) + "\r");
  EXPECT_EQ(progress.done(), 20U);
}

TEST_F(ProgressTest, AbandonBeforeAnyDrawWritesNothing) {
  Progress progress(out_.file(), "a.bin", 1000, 0, terminal(20));
  progress.abandon();
  EXPECT_EQ(out_.text(), "");
}

TEST_F(ProgressTest, AbandonInPlainModeWritesNothing) {
  Progress::Options options = plain();
  options.plain_line_every = 1s;
  Progress progress(out_.file(), "a.bin", 1000, 0, options);
  now_ += 1s;
  progress.add(10);
  const std::string drawn = out_.text();
  ASSERT_EQ(drawn, "a.bin: 1% 10 B of 1000 B, 10 B/s, 1:39 left\n");
  progress.abandon();
  progress.finish();
  now_ += 1s;
  progress.add(10);
  EXPECT_EQ(out_.text(), drawn);
}

// Elsewhere: plain lines

TEST_F(ProgressTest, PlainLineMatchesTheExample) {
  Progress::Options options = plain();
  options.plain_line_every = 3s;
  Progress progress(out_.file(), "footage/a.mkv", 200 * kMiB, 0, options);
  now_ += 3850ms;
  progress.add(90 * kMiB);
  EXPECT_EQ(out_.text(), "footage/a.mkv: 45% 90.0 MiB of 200.0 MiB, 23.4 MiB/s, 0:05 left\n");
}

TEST_F(ProgressTest, PlainLinesComeAtMostEveryInterval) {
  Progress progress(out_.file(), "log.txt", 100 * kKiB, 0, plain());  // every 5 s
  now_ += 1s;
  progress.add(10 * kKiB);  // a log gets no line before one is due
  now_ += 3999ms;
  progress.add(10 * kKiB);
  EXPECT_EQ(out_.text(), "");

  now_ += 1ms;  // 5 s since the start
  progress.add(10 * kKiB);
  const std::string first = "log.txt: 30% 30.0 KiB of 100.0 KiB, 6.0 KiB/s, 0:12 left\n";
  EXPECT_EQ(out_.text(), first);

  now_ += 4s;
  progress.add(10 * kKiB);
  EXPECT_EQ(out_.text(), first);

  now_ += 1s;  // 5 s since the last line
  progress.add(10 * kKiB);
  const std::string second = "log.txt: 50% 50.0 KiB of 100.0 KiB, 5.0 KiB/s, 0:10 left\n";
  EXPECT_EQ(out_.text(), first + second);

  now_ += 2s;
  progress.add(50 * kKiB);
  progress.finish();
  progress.finish();
  EXPECT_EQ(out_.text(), first + second + "log.txt  100.0 KiB in 0:12, 8.3 KiB/s\n");
}

TEST_F(ProgressTest, ShortPlainTransferLogsOnlyTheFinalLine) {
  Progress progress(out_.file(), "small.txt", 2 * kKiB, 0, plain());
  now_ += 2s;
  progress.add(2 * kKiB);
  progress.finish();
  EXPECT_EQ(out_.text(), "small.txt  2.0 KiB in 0:02, 1.0 KiB/s\n");
}

// is_terminal

TEST(IsTerminal, AFileIsNotATerminal) {
  const File file{std::tmpfile()};
  ASSERT_NE(file, nullptr);
  int width = 0;
  EXPECT_FALSE(Progress::is_terminal(file.get(), width));
  EXPECT_EQ(width, 80);
}

/// A pseudo-terminal whose size the test sets.
class PseudoTerminal {
 public:
  PseudoTerminal() : master_(::posix_openpt(O_RDWR | O_NOCTTY)) {
    if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0) {
      return;
    }
    const char* name = ::ptsname(master_);
    const int slave = name == nullptr ? -1 : ::open(name, O_RDWR | O_NOCTTY);
    if (slave >= 0) {
      slave_.reset(::fdopen(slave, "w"));
      if (slave_ == nullptr) {
        ::close(slave);
      }
    }
  }
  ~PseudoTerminal() {
    if (master_ >= 0) {
      ::close(master_);
    }
  }
  PseudoTerminal(const PseudoTerminal&) = delete;
  PseudoTerminal& operator=(const PseudoTerminal&) = delete;

  std::FILE* slave() const { return slave_.get(); }
  bool resize(unsigned short columns) const {
    winsize size{};
    size.ws_row = 24;
    size.ws_col = columns;
    return ::ioctl(master_, TIOCSWINSZ, &size) == 0;
  }

 private:
  int master_;
  File slave_;
};

TEST(IsTerminal, ATerminalGivesItsColumns) {
  const PseudoTerminal terminal;
  if (terminal.slave() == nullptr) {
    GTEST_SKIP() << "no pseudo-terminal here";
  }
  ASSERT_TRUE(terminal.resize(123));
  int width = 0;
  EXPECT_TRUE(Progress::is_terminal(terminal.slave(), width));
  EXPECT_EQ(width, 123);

  ASSERT_TRUE(terminal.resize(0));  // unknown
  EXPECT_TRUE(Progress::is_terminal(terminal.slave(), width));
  EXPECT_EQ(width, 80);
}

}  // namespace
}  // namespace peernet::cli
