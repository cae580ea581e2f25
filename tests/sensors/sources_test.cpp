#include "sensors/sources.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <future>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sensors/fake_sysfs.h"

namespace peernet::sensors {
namespace {

using test::FakeSysfs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using namespace std::literals;
using Sources = std::vector<std::unique_ptr<Source>>;

constexpr Millis kNoon = 1'714'564'800'000;  // 2024-05-01 12:00 UTC
constexpr Millis kHour = 3'600'000;

Sources discover_in(const FakeSysfs& sysfs, bool simulate = false) {
  return discover(DiscoverOptions{.sysfs = sysfs.root(), .simulate = simulate});
}

std::vector<std::string> ids(const Sources& sources) {
  std::vector<std::string> out;
  out.reserve(sources.size());
  for (const auto& s : sources) {
    out.push_back(s->info().id);
  }
  return out;
}

/// The source with `id`; fails the test when there is none.
Source& find(const Sources& sources, std::string_view id) {
  for (const auto& s : sources) {
    if (s->info().id == id) {
      return *s;
    }
  }
  ADD_FAILURE() << "no sensor " << id << " among " << ::testing::PrintToString(ids(sources));
  throw std::runtime_error("no such sensor");
}

/// A hwmon device as the kernel lays it out: the device's folder under devices/, and
/// class/hwmon/hwmonN a relative symlink to it.
std::string add_hwmon(const FakeSysfs& sysfs, int n, std::string_view device,
                      std::string_view name) {
  const auto hwmon = "hwmon" + std::to_string(n);
  auto folder = "devices/" + std::string(device) + "/hwmon/" + hwmon;
  sysfs.write(folder + "/name", std::string(name) + "\n");
  sysfs.symlink("class/hwmon/" + hwmon, "../../" + folder);
  return folder;
}

/// Opens and reads /proc/self/mem at offset 0 the way sysfs attributes are read: the errno.
int proc_self_mem_errno() {
  const int fd = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  char c = 0;
  const auto n = ::read(fd, &c, 1);
  const int error = n < 0 ? errno : 0;
  ::close(fd);
  return error;
}

/// Runs `read` with a watchdog: should it block on the FIFO at `fifo`, a writer opens and
/// closes it so that the read ends, and the test fails instead of hanging.
ReadResult read_guarded(Source& source, const std::filesystem::path& fifo) {
  auto result = std::async(std::launch::async, [&] { return source.read(kNoon); });
  if (result.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
    ADD_FAILURE() << "read() blocked on the FIFO " << fifo;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      ::close(fd);
    }
  }
  return result.get();
}

/// Whether `id` is made only of [A-Za-z0-9._~-], as ids must be.
bool valid_id(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '~' ||
           c == '-';
  });
}

TEST(FakeSysfsTest, ProcSelfMemGivesARealEio) {
  // The dht11 tests rely on this to produce the EIO a failed DHT read gives.
  EXPECT_EQ(proc_self_mem_errno(), EIO);
}

TEST(FakeSysfsTest, RemovesItsFolder) {
  std::filesystem::path root;
  {
    FakeSysfs sysfs;
    root = sysfs.root();
    sysfs.write("class/hwmon/hwmon0/name", "x\n");
    EXPECT_TRUE(std::filesystem::exists(root / "class/hwmon/hwmon0/name"));
    FakeSysfs other;
    EXPECT_NE(other.root(), root);
  }
  EXPECT_FALSE(std::filesystem::exists(root));
}

TEST(DiscoverTest, MissingSysfsFindsNothing) {
  FakeSysfs sysfs;
  EXPECT_TRUE(discover(DiscoverOptions{.sysfs = sysfs.path("no-such-folder")}).empty());
  EXPECT_TRUE(discover_in(sysfs).empty());
}

TEST(DiscoverTest, MissingSysfsStillSimulates) {
  FakeSysfs sysfs;
  const auto sources = discover(DiscoverOptions{.sysfs = sysfs.path("nothing"), .simulate = true});
  EXPECT_THAT(ids(sources), ElementsAre("sim-temperature", "sim-humidity"));
}

TEST(DiscoverTest, ClassesThatAreFilesOrLoopsAreSkipped) {
  FakeSysfs sysfs;
  sysfs.write("class/hwmon", "not a folder");
  sysfs.write("bus/iio/devices", "");
  sysfs.symlink("bus/w1/devices/28-000000000001", "28-000000000001");  // a loop
  EXPECT_TRUE(discover_in(sysfs).empty());
}

TEST(HwmonTest, LabelNamesTheSensor) {
  FakeSysfs sysfs;
  const auto dev = add_hwmon(sysfs, 0, "platform/coretemp.0", "coretemp");
  sysfs.write(dev + "/temp1_input", "45000\n");
  sysfs.write(dev + "/temp1_label", "Package id 0\n");
  const auto sources = discover_in(sysfs);
  ASSERT_EQ(sources.size(), 1U);
  const auto& info = sources[0]->info();
  EXPECT_EQ(info.id, "hwmon-coretemp-temp1");
  EXPECT_EQ(info.name, "coretemp Package id 0");
  EXPECT_EQ(info.kind, Kind::kTemperature);
  EXPECT_EQ(info.unit, "°C");
  EXPECT_EQ(info.source, "hwmon");
  const auto result = sources[0]->read(kNoon);
  ASSERT_TRUE(result.value) << result.error;
  EXPECT_DOUBLE_EQ(*result.value, 45.0);
}

TEST(HwmonTest, WithoutLabelTheChannelNamesIt) {
  FakeSysfs sysfs;
  const auto dev = add_hwmon(sysfs, 0, "platform/coretemp.0", "coretemp");
  sysfs.write(dev + "/temp2_input", "-1250\n");
  const auto sources = discover_in(sysfs);
  ASSERT_EQ(sources.size(), 1U);
  EXPECT_EQ(sources[0]->info().id, "hwmon-coretemp-temp2");
  EXPECT_EQ(sources[0]->info().name, "coretemp temp2");
  EXPECT_EQ(sources[0]->read(kNoon).value, -1.25);
}

TEST(HwmonTest, FlatFoldersAndTheOldDeviceLayoutWork) {
  FakeSysfs sysfs;
  sysfs.write("class/hwmon/hwmon0/name", "acpitz\n");
  sysfs.write("class/hwmon/hwmon0/temp1_input", "27800\n");
  // Drivers older than the hwmon core keep their attributes in device/.
  sysfs.write("class/hwmon/hwmon1/device/name", "w83627hf\n");
  sysfs.write("class/hwmon/hwmon1/device/temp1_input", "31000\n");
  const auto sources = discover_in(sysfs);
  EXPECT_THAT(ids(sources), ElementsAre("hwmon-acpitz-temp1", "hwmon-w83627hf-temp1"));
  EXPECT_EQ(find(sources, "hwmon-w83627hf-temp1").read(kNoon).value, 31.0);
}

TEST(HwmonTest, SymlinksIntoDevicesAreFollowed) {
  FakeSysfs sysfs;
  const auto dev = add_hwmon(sysfs, 3, "pci0000:00/0000:00:18.3", "k10temp");
  sysfs.write(dev + "/temp1_input", "52125\n");
  sysfs.write(dev + "/temp1_label", "Tctl\n");
  ASSERT_TRUE(std::filesystem::is_symlink(sysfs.path("class/hwmon/hwmon3")));
  const auto sources = discover_in(sysfs);
  ASSERT_EQ(sources.size(), 1U);
  EXPECT_EQ(sources[0]->info().id, "hwmon-k10temp-temp1");
  EXPECT_EQ(sources[0]->info().name, "k10temp Tctl");
  EXPECT_EQ(sources[0]->read(kNoon).value, 52.125);
}

TEST(HwmonTest, DuplicateNamesAreToldApartByDevicePath) {
  FakeSysfs sysfs;
  // hwmon numbers follow probe order, which changes between boots; the device paths do not.
  const auto second = add_hwmon(sysfs, 0, "pci0000:00/0000:02:00.0/nvme/nvme1", "nvme");
  const auto first = add_hwmon(sysfs, 1, "pci0000:00/0000:01:00.0/nvme/nvme0", "nvme");
  sysfs.write(first + "/temp1_input", "40000\n");
  sysfs.write(first + "/temp1_label", "Composite\n");
  sysfs.write(second + "/temp1_input", "50000\n");
  sysfs.write(second + "/temp1_label", "Composite\n");
  const auto sources = discover_in(sysfs);
  EXPECT_THAT(ids(sources), ElementsAre("hwmon-nvme-2-temp1", "hwmon-nvme-temp1"));
  EXPECT_EQ(find(sources, "hwmon-nvme-temp1").read(kNoon).value, 40.0);
  EXPECT_EQ(find(sources, "hwmon-nvme-2-temp1").read(kNoon).value, 50.0);
  EXPECT_EQ(find(sources, "hwmon-nvme-2-temp1").info().name, "nvme-2 Composite");
}

TEST(HwmonTest, HumidityAndNumericOrder) {
  FakeSysfs sysfs;
  sysfs.write("class/hwmon/hwmon10/name", "later\n");
  sysfs.write("class/hwmon/hwmon10/temp1_input", "20000\n");
  sysfs.write("class/hwmon/hwmon2/name", "sht3x\n");
  sysfs.write("class/hwmon/hwmon2/temp10_input", "21000\n");
  sysfs.write("class/hwmon/hwmon2/temp2_input", "22000\n");
  sysfs.write("class/hwmon/hwmon2/humidity1_input", "45500\n");
  sysfs.write("class/hwmon/hwmon2/temp2_max", "80000\n");
  sysfs.write("class/hwmon/hwmon2/temp_input", "1\n");
  const auto sources = discover_in(sysfs);
  EXPECT_THAT(ids(sources), ElementsAre("hwmon-sht3x-humidity1", "hwmon-sht3x-temp2",
                                        "hwmon-sht3x-temp10", "hwmon-later-temp1"));
  auto& humidity = find(sources, "hwmon-sht3x-humidity1");
  EXPECT_EQ(humidity.info().kind, Kind::kHumidity);
  EXPECT_EQ(humidity.info().unit, "%RH");
  EXPECT_EQ(humidity.info().name, "sht3x humidity1");
  EXPECT_EQ(humidity.read(kNoon).value, 45.5);
}

TEST(IioTest, ProcessedInputs) {
  FakeSysfs sysfs;
  sysfs.write("bus/iio/devices/iio:device0/name", "dht11\n");
  sysfs.write("bus/iio/devices/iio:device0/in_temp_input", "23100\n");
  sysfs.write("bus/iio/devices/iio:device0/in_humidityrelative_input", "45600\n");
  const auto sources = discover_in(sysfs);
  ASSERT_THAT(ids(sources), ElementsAre("iio-dht11-humidity", "iio-dht11-temp"));
  auto& temp = find(sources, "iio-dht11-temp");
  EXPECT_EQ(temp.info().name, "dht11 temperature");
  EXPECT_EQ(temp.info().source, "iio");
  EXPECT_EQ(temp.info().unit, "°C");
  EXPECT_EQ(temp.read(kNoon).value, 23.1);
  auto& humidity = find(sources, "iio-dht11-humidity");
  EXPECT_EQ(humidity.info().name, "dht11 humidity");
  EXPECT_EQ(humidity.info().kind, Kind::kHumidity);
  EXPECT_EQ(humidity.info().unit, "%RH");
  EXPECT_EQ(humidity.read(kNoon).value, 45.6);
}

TEST(IioTest, RawWithScaleAndOffset) {
  FakeSysfs sysfs;
  const std::string dev = "bus/iio/devices/iio:device1/";
  sysfs.write(dev + "name", "si7020\n");
  // (raw + offset) * scale, in milli-units.
  sysfs.write(dev + "in_temp_raw", "6000\n");
  sysfs.write(dev + "in_temp_offset", "-1000\n");
  sysfs.write(dev + "in_temp_scale", "4.5\n");
  sysfs.write(dev + "in_humidityrelative_raw", "1000\n");
  sysfs.write(dev + "in_humidityrelative_scale", "55.5\n");
  // A channel's own scale wins over its type's; the type's offset applies to every channel.
  sysfs.write(dev + "in_temp_object_raw", "3000\n");
  sysfs.write(dev + "in_temp_object_scale", "2\n");
  sysfs.write(dev + "in_temp0_raw", "7000\n");
  sysfs.write(dev + "in_temp0_offset", "0\n");
  const auto sources = discover_in(sysfs);
  EXPECT_EQ(find(sources, "iio-si7020-temp").read(kNoon).value, 22.5);
  EXPECT_EQ(find(sources, "iio-si7020-humidity").read(kNoon).value, 55.5);
  auto& object = find(sources, "iio-si7020-temp_object");
  EXPECT_EQ(object.info().name, "si7020 temperature object");
  EXPECT_EQ(object.read(kNoon).value, 4.0);
  // in_temp0 has its own offset but shares in_temp_scale.
  EXPECT_EQ(find(sources, "iio-si7020-temp0").read(kNoon).value, 31.5);

  sysfs.write(dev + "in_temp_scale", "bogus\n");
  const auto broken = find(sources, "iio-si7020-temp").read(kNoon);
  EXPECT_FALSE(broken.value);
  EXPECT_THAT(broken.error, HasSubstr("scale"));
}

TEST(IioTest, ProcessedInputIsPreferredToRaw) {
  FakeSysfs sysfs;
  sysfs.write("bus/iio/devices/iio:device0/name", "bme280\n");
  sysfs.write("bus/iio/devices/iio:device0/in_temp_input", "19500\n");
  sysfs.write("bus/iio/devices/iio:device0/in_temp_raw", "123456\n");
  const auto sources = discover_in(sysfs);
  ASSERT_THAT(ids(sources), ElementsAre("iio-bme280-temp"));
  EXPECT_EQ(sources[0]->read(kNoon).value, 19.5);
}

TEST(IioTest, Dht11EioIsAFailedRead) {
  ASSERT_EQ(proc_self_mem_errno(), EIO);
  FakeSysfs sysfs;
  sysfs.write("bus/iio/devices/iio:device0/name", "dht11\n");
  // Reading offset 0 of /proc/self/mem fails with EIO, as a dht11 read that timed out does.
  sysfs.symlink("bus/iio/devices/iio:device0/in_temp_input", "/proc/self/mem");
  sysfs.write("bus/iio/devices/iio:device0/in_humidityrelative_input", "51000\n");
  const auto sources = discover_in(sysfs);
  const auto result = find(sources, "iio-dht11-temp").read(kNoon);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "EIO");
  EXPECT_EQ(find(sources, "iio-dht11-humidity").read(kNoon).value, 51.0);
}

TEST(ReadTest, ValueThenFailureGivesNoValueNotTheOldOne) {
  FakeSysfs sysfs;
  sysfs.write("bus/iio/devices/iio:device0/name", "dht11\n");
  const auto input = "bus/iio/devices/iio:device0/in_temp_input";
  sysfs.write(input, "21000\n");
  const auto sources = discover_in(sysfs);
  auto& temp = find(sources, "iio-dht11-temp");
  EXPECT_EQ(temp.read(kNoon).value, 21.0);

  sysfs.symlink(input, "/proc/self/mem");
  auto result = temp.read(kNoon + 2000);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "EIO");

  sysfs.write(input, "");
  result = temp.read(kNoon + 4000);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "empty");

  sysfs.remove(input);
  result = temp.read(kNoon + 6000);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "ENOENT");

  sysfs.write(input, "21500\n");
  EXPECT_EQ(temp.read(kNoon + 8000).value, 21.5);
}

TEST(ReadTest, NonsenseIsAFailedRead) {
  FakeSysfs sysfs;
  const auto dev = add_hwmon(sysfs, 0, "platform/sensor", "probe");
  sysfs.write(dev + "/temp1_input", "0\n");
  sysfs.write(dev + "/humidity1_input", "0\n");
  const auto sources = discover_in(sysfs);
  auto& temp = find(sources, "hwmon-probe-temp1");
  auto& humidity = find(sources, "hwmon-probe-humidity1");
  EXPECT_EQ(temp.read(kNoon).value, 0.0);  // 0 °C is a real temperature

  const auto temp_error = [&](std::string_view text) {
    sysfs.write(dev + "/temp1_input", text);
    const auto result = temp.read(kNoon);
    EXPECT_FALSE(result.value) << "for " << ::testing::PrintToString(std::string(text));
    EXPECT_FALSE(result.error.empty());
    return result.error;
  };
  EXPECT_EQ(temp_error("\n"), "empty");
  EXPECT_THAT(temp_error("abc\n"), HasSubstr("not a number"));
  EXPECT_THAT(temp_error("12 34\n"), HasSubstr("not a number"));
  EXPECT_THAT(temp_error("0x10\n"), HasSubstr("not a number"));
  EXPECT_THAT(temp_error("1e999\n"), HasSubstr("not a number"));
  EXPECT_EQ(temp_error("nan\n"), "not finite");
  EXPECT_EQ(temp_error("inf\n"), "not finite");
  EXPECT_THAT(temp_error("-300000\n"), HasSubstr("out of range"));
  EXPECT_THAT(temp_error("1000001\n"), HasSubstr("out of range"));
  EXPECT_EQ(temp_error(std::string(5000, '1')), "too long");
  // The error quotes what was read, made printable and short.
  EXPECT_EQ(temp_error("\x01\xff"), "not a number: ??");

  sysfs.write(dev + "/temp1_input", "-273150\n");
  EXPECT_EQ(temp.read(kNoon).value, -273.15);

  sysfs.write(dev + "/humidity1_input", "150000\n");
  EXPECT_FALSE(humidity.read(kNoon).value);
  sysfs.write(dev + "/humidity1_input", "-10000\n");
  EXPECT_FALSE(humidity.read(kNoon).value);
  // A little past 100 %RH is what such sensors say when saturated: it reads as 100.
  sysfs.write(dev + "/humidity1_input", "100900\n");
  EXPECT_EQ(humidity.read(kNoon).value, 100.0);
}

TEST(ReadTest, FifoWhereAFileShouldBeDoesNotHang) {
  FakeSysfs sysfs;
  const auto dev = add_hwmon(sysfs, 0, "platform/sensor", "probe");
  sysfs.write(dev + "/temp1_input", "20000\n");
  const auto sources = discover_in(sysfs);
  ASSERT_EQ(sources.size(), 1U);
  const auto fifo = sysfs.fifo(dev + "/temp1_input");
  const auto result = read_guarded(*sources[0], fifo);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "not a regular file");
}

TEST(ReadTest, FifosInTheTreeDoNotHangDiscovery) {
  FakeSysfs sysfs;
  sysfs.fifo("class/hwmon/hwmon0/name");
  sysfs.fifo("class/hwmon/hwmon0/temp1_label");
  sysfs.fifo("class/hwmon/hwmon0/temp1_input");
  sysfs.write("class/hwmon/hwmon0/temp2_input", "30000\n");
  sysfs.fifo("bus/w1/devices/28-000000000001/w1_slave");
  auto done = std::async(std::launch::async, [&] { return discover_in(sysfs); });
  if (done.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
    ADD_FAILURE() << "discover() blocked on a FIFO";
    for (const auto* f : {"class/hwmon/hwmon0/name", "class/hwmon/hwmon0/temp1_label",
                          "class/hwmon/hwmon0/temp1_input"}) {
      const int fd = ::open(sysfs.path(f).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
  const auto sources = done.get();
  // The device is named after its folder when its name file cannot be read.
  EXPECT_THAT(ids(sources), ElementsAre("hwmon-hwmon0-temp1", "hwmon-hwmon0-temp2"));
  EXPECT_EQ(find(sources, "hwmon-hwmon0-temp1").info().name, "hwmon0 temp1");
  EXPECT_FALSE(read_guarded(find(sources, "hwmon-hwmon0-temp1"),
                            sysfs.path("class/hwmon/hwmon0/temp1_input"))
                   .value);
  EXPECT_EQ(find(sources, "hwmon-hwmon0-temp2").read(kNoon).value, 30.0);
}

TEST(ReadTest, FolderWhereAFileShouldBeIsAFailedRead) {
  FakeSysfs sysfs;
  const auto dev = add_hwmon(sysfs, 0, "platform/sensor", "probe");
  sysfs.folder(dev + "/temp1_input");
  const auto sources = discover_in(sysfs);
  ASSERT_EQ(sources.size(), 1U);
  const auto result = sources[0]->read(kNoon);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "not a regular file");
}

constexpr std::string_view kGoodW1 =
    "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
    "72 01 4b 46 7f ff 0e 10 57 t=23125\n";

TEST(W1Test, ThermometersAreFoundAndRead) {
  FakeSysfs sysfs;
  const auto slave = "devices/w1_bus_master1/28-000005e2fdc3/w1_slave";
  sysfs.write(slave, kGoodW1);
  sysfs.symlink("bus/w1/devices/28-000005e2fdc3",
                "../../../devices/w1_bus_master1/28-000005e2fdc3");
  sysfs.symlink("bus/w1/devices/w1_bus_master1", "../../../devices/w1_bus_master1");
  // An EEPROM (family 2d) and a switch (family 05) are not thermometers.
  sysfs.write("bus/w1/devices/2d-00000a1b2c3d/eeprom", "");
  sysfs.write("bus/w1/devices/05-00000a1b2c3d/state", "");
  sysfs.write("bus/w1/devices/10-000802b4d5e6/w1_slave",
              "2d 00 4b 46 ff ff 0c 10 c7 : crc=c7 YES\n2d 00 4b 46 ff ff 0c 10 c7 t=-10500\n");
  const auto sources = discover_in(sysfs);
  ASSERT_THAT(ids(sources), ElementsAre("w1-10-000802b4d5e6", "w1-28-000005e2fdc3"));
  auto& ds18b20 = find(sources, "w1-28-000005e2fdc3");
  EXPECT_EQ(ds18b20.info().name, "DS18B20 28-000005e2fdc3");
  EXPECT_EQ(ds18b20.info().source, "w1");
  EXPECT_EQ(ds18b20.info().unit, "°C");
  EXPECT_EQ(ds18b20.read(kNoon).value, 23.125);
  EXPECT_EQ(find(sources, "w1-10-000802b4d5e6").info().name, "DS18S20 10-000802b4d5e6");
  EXPECT_EQ(find(sources, "w1-10-000802b4d5e6").read(kNoon).value, -10.5);

  sysfs.write(slave,
              "72 01 4b 46 7f ff 0e 10 57 : crc=12 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n");
  auto result = ds18b20.read(kNoon);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "bad CRC");

  sysfs.write(slave,
              "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n");
  result = ds18b20.read(kNoon);
  EXPECT_FALSE(result.value);
  EXPECT_EQ(result.error, "power-on value 85 °C");
}

TEST(W1Test, ParseW1Slave) {
  const auto good = parse_w1_slave(kGoodW1);
  ASSERT_TRUE(good.value) << good.error;
  EXPECT_EQ(*good.value, 23.125);
  EXPECT_TRUE(good.error.empty());

  EXPECT_EQ(parse_w1_slave("ff ff ff ff ff ff ff ff ff : crc=c9 NO\n"
                           "ff ff ff ff ff ff ff ff ff t=-62\n")
                .error,
            "bad CRC");
  EXPECT_EQ(parse_w1_slave("50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n"
                           "50 05 4b 46 7f ff 0c 10 1c t=85000\n")
                .error,
            "power-on value 85 °C");
  // A sensor that is not there reads as zero bytes with a matching CRC.
  EXPECT_THAT(parse_w1_slave("00 00 00 00 00 00 00 00 00 : crc=00 YES\n"
                             "00 00 00 00 00 00 00 00 00 t=0\n")
                  .error,
              HasSubstr("no answer"));
  EXPECT_EQ(parse_w1_slave("").error, "empty");
  EXPECT_EQ(parse_w1_slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n").error, "no t= value");
  EXPECT_THAT(parse_w1_slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                             "72 01 4b 46 7f ff 0e 10 57 t=warm\n")
                  .error,
              HasSubstr("not a number"));
  EXPECT_EQ(parse_w1_slave("garbage").error, "bad CRC");
  EXPECT_FALSE(parse_w1_slave("\x00\x01\xff YES\nt=\n"sv).value);
  // Negative temperatures, and CRLF line ends.
  EXPECT_EQ(parse_w1_slave("5e ff 4b 46 7f ff 02 10 c4 : crc=c4 YES\r\n"
                           "5e ff 4b 46 7f ff 02 10 c4 t=-10125\r\n")
                .value,
            -10.125);
  EXPECT_THAT(parse_w1_slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                             "72 01 4b 46 7f ff 0e 10 57 t=2000000\n")
                  .error,
              HasSubstr("out of range"));
}

TEST(IdTest, OddNamesMakeCleanIds) {
  FakeSysfs sysfs;
  sysfs.write("class/hwmon/hwmon0/name", "my sensor/\x01\xff\xc3\xa9:\n");
  sysfs.write("class/hwmon/hwmon0/temp1_input", "20000\n");
  sysfs.write("class/hwmon/hwmon0/temp1_label", "Bad\x1b[31m label\n");
  sysfs.write("bus/iio/devices/iio:device0/name", "dht11@4 \"x\"\n");
  sysfs.write("bus/iio/devices/iio:device0/in_temp_input", "20000\n");
  sysfs.write("bus/iio/devices/iio:device1/name", std::string(300, 'n'));
  sysfs.write("bus/iio/devices/iio:device1/in_temp_input", "20000\n");
  sysfs.write("bus/iio/devices/iio:device2/name", "\n");
  sysfs.write("bus/iio/devices/iio:device2/in_temp_input", "20000\n");
  sysfs.write("bus/w1/devices/28-00 0\x7f/w1_slave", std::string(kGoodW1));
  const auto sources = discover_in(sysfs);
  ASSERT_EQ(sources.size(), 5U);
  for (const auto& s : sources) {
    EXPECT_TRUE(valid_id(s->info().id)) << s->info().id;
    EXPECT_LE(s->info().id.size(), 64U) << s->info().id;
    EXPECT_LE(s->info().name.size(), 70U) << s->info().name;
    for (char c : s->info().name) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "in " << ::testing::PrintToString(s->info().name);
    }
  }
  EXPECT_THAT(ids(sources), ::testing::Contains("hwmon-my_sensor______-temp1"));
  EXPECT_THAT(ids(sources), ::testing::Contains("iio-dht11_4__x_-temp"));
  // An empty name file: the folder's name stands in.
  EXPECT_THAT(ids(sources), ::testing::Contains("iio-iio_device2-temp"));
  EXPECT_THAT(ids(sources), ::testing::Contains("w1-28-00_0_"));
}

TEST(DiscoverTest, DevicesPerClassAreLimited) {
  FakeSysfs sysfs;
  for (int n = 0; n < 300; ++n) {
    const auto folder = "class/hwmon/hwmon" + std::to_string(n);
    sysfs.write(folder + "/name", "many\n");
    sysfs.write(folder + "/temp1_input", "20000\n");
  }
  const auto sources = discover_in(sysfs);
  EXPECT_EQ(sources.size(), 256U);
  EXPECT_EQ(sources.front()->info().id, "hwmon-many-temp1");
  EXPECT_EQ(sources.back()->info().id, "hwmon-many-256-temp1");
  std::vector<std::string> all = ids(sources);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "ids must be unique";
}

TEST(DiscoverTest, OrderIsIioHwmonW1ThenSimulated) {
  FakeSysfs sysfs;
  sysfs.write("bus/w1/devices/28-000005e2fdc3/w1_slave", std::string(kGoodW1));
  sysfs.write("class/hwmon/hwmon0/name", "acpitz\n");
  sysfs.write("class/hwmon/hwmon0/temp1_input", "27800\n");
  sysfs.write("bus/iio/devices/iio:device0/name", "dht11\n");
  sysfs.write("bus/iio/devices/iio:device0/in_temp_input", "21000\n");
  // Triggers live next to devices and are not sensors.
  sysfs.write("bus/iio/devices/trigger0/name", "sysfstrig0\n");
  const auto first = ids(discover_in(sysfs, true));
  EXPECT_THAT(first, ElementsAre("iio-dht11-temp", "hwmon-acpitz-temp1", "w1-28-000005e2fdc3",
                                 "sim-temperature", "sim-humidity"));
  EXPECT_EQ(ids(discover_in(sysfs, true)), first);
}

TEST(SimulatedTest, DeterministicInNow) {
  auto a = simulated_source(Kind::kTemperature);
  auto b = simulated_source(Kind::kTemperature);
  EXPECT_EQ(a->info().id, "sim-temperature");
  EXPECT_EQ(a->info().unit, "°C");
  EXPECT_EQ(a->info().source, "simulated");
  for (Millis t = kNoon; t < kNoon + kHour; t += 61'000) {
    EXPECT_EQ(a->read(t).value, b->read(t).value);
  }
  // The same instant read twice gives the same value; the source keeps no state.
  EXPECT_EQ(a->read(kNoon).value, a->read(kNoon).value);
}

TEST(SimulatedTest, FollowsADailyCycleInRange) {
  auto temp = simulated_source(Kind::kTemperature);
  auto humidity = simulated_source(Kind::kHumidity);
  EXPECT_EQ(humidity->info().id, "sim-humidity");
  EXPECT_EQ(humidity->info().kind, Kind::kHumidity);
  EXPECT_EQ(humidity->info().unit, "%RH");
  const Millis midnight = kNoon - 12 * kHour;
  std::vector<double> temps;
  for (Millis t = midnight; t < midnight + 86'400'000; t += 300'000) {
    const auto v = temp->read(t);
    const auto h = humidity->read(t);
    ASSERT_TRUE(v.value && h.value);
    EXPECT_GE(*v.value, 9.7);
    EXPECT_LE(*v.value, 20.3);
    EXPECT_GE(*h.value, 50.0);
    EXPECT_LE(*h.value, 80.0);
    EXPECT_DOUBLE_EQ(*v.value, std::round(*v.value * 10) / 10);
    EXPECT_DOUBLE_EQ(*h.value, std::round(*h.value * 10) / 10);
    temps.push_back(*v.value);
  }
  // Warm in the afternoon, cold before dawn, and not the same value all day.
  const auto afternoon = *temp->read(midnight + 15 * kHour).value;
  const auto dawn = *temp->read(midnight + 3 * kHour).value;
  EXPECT_GT(afternoon, dawn + 8);
  EXPECT_GT(*humidity->read(midnight + 3 * kHour).value,
            *humidity->read(midnight + 15 * kHour).value + 20);
  // Times before 1970 work too.
  EXPECT_TRUE(temp->read(-1).value);
}

}  // namespace
}  // namespace peernet::sensors
