#pragma once

// Where readings come from: what Linux exposes under /sys (IIO, hwmon, 1-wire), found without
// configuration, and a simulated source for demos. Nothing here needs root.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sensors/reading.h"

namespace peernet::sensors {

/// What one read gave: a value in the sensor's unit, or why there is none.
struct ReadResult {
  std::optional<double> value;
  std::string error;  ///< when there is no value: "EIO", "bad CRC", "not a number: ...", ...
};

/// One sensor and how to read it. read() blocks for as long as the kernel takes (a DHT22 read
/// takes tens of milliseconds); call it from one thread at a time.
class Source {
 public:
  virtual ~Source() = default;
  virtual const SensorInfo& info() const noexcept = 0;
  /// Reads the sensor now (`now` drives the simulated source; the others ignore it).
  virtual ReadResult read(Millis now) = 0;
  /// The shortest time between two reads that can give a new value: the kernel's dht11 driver
  /// answers from a cache for 2 s, so reading it sooner would repeat an old value as new.
  virtual Millis min_period() const noexcept { return 0; }
};

struct DiscoverOptions {
  /// Where sysfs is mounted; tests point it at a folder laid out the same way.
  std::filesystem::path sysfs = "/sys";
  /// Add the simulated sensors ("sim-temperature" and "sim-humidity").
  bool simulate = false;
};

/// Every sensor found, in a stable order (IIO, hwmon, 1-wire, then simulated; by path within
/// each). Folders that are missing or unreadable are skipped (logged at debug), never thrown.
///
/// - IIO, /sys/bus/iio/devices/iio:deviceN: in_temp_input (m°C) and in_humidityrelative_input
///   (m%RH), or in_*_raw with in_*_scale and in_*_offset ((raw + offset) * scale, milli-units).
///   Ids "iio-NAME-temp", "iio-NAME-humidity" (NAME from the device's name file); other
///   channels of those types keep their suffix: in_temp0_input is "iio-NAME-temp0".
/// - hwmon, /sys/class/hwmon/hwmonN: tempK_input (m°C) and humidityK_input (m%RH); names from
///   tempK_label. Ids "hwmon-NAME-tempK".
/// - IIO and hwmon devices that share a name get "-2", "-3", ... after NAME
///   ("hwmon-nvme-2-temp1"), in the order of their device paths, which survive a reboot.
///   NAME keeps only [A-Za-z0-9._~-] (other bytes become '_'), at most 32 bytes.
/// - 1-wire, /sys/bus/w1/devices/FF-SERIAL/w1_slave for the temperature families (10, 22, 28,
///   3b, 42): the first line must end in "YES" (the CRC matched) before t= is trusted, and
///   85000, the power-on value, is taken as a failed read. Id "w1-FF-SERIAL".
/// - Simulated: a daily cycle with a little noise, deterministic in `now`, to 0.1.
///
/// Every read opens, reads (at most 4 KiB) and closes its files afresh. A read that fails (any
/// errno, such as the EIO of a DHT sensor that did not answer), says nothing, is not a number,
/// or is implausible (below -273.15 or above 1000 °C, beyond 0 to 100 %RH by more than 2)
/// gives no value and the reason; a FIFO or folder where a file should be is a failed read and
/// never blocks. Humidity slightly beyond 0 to 100 %RH is clamped; values are kept to 0.001.
/// At most 256 devices of each class are looked at.
std::vector<std::unique_ptr<Source>> discover(const DiscoverOptions& options);

/// The simulated sensor of `kind` (id "sim-temperature" or "sim-humidity").
std::unique_ptr<Source> simulated_source(Kind kind);

/// Parses the text of a w1_slave file: the temperature in °C, or why it cannot be trusted.
ReadResult parse_w1_slave(std::string_view text);

}  // namespace peernet::sensors
