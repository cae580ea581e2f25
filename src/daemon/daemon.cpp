#include "daemon/daemon.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "core/clock.h"
#include "core/memory_registry.h"
#include "daemon/expiry_timer.h"
#include "daemon/version.h"
#include "http/server.h"

namespace peernet::daemon {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

bool write_port_file(const std::string& path, std::uint16_t port) {
  // Written whole, then renamed, so a reader never sees half a number.
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << '\n';
    if (!out) {
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  return !ec;
}

/// Polls the session count until it is zero or the drain time is up.
void drain(asio::steady_timer& timer, http::HttpServer& server, asio::signal_set& signals,
           asio::io_context& io, std::chrono::steady_clock::time_point give_up) {
  if (server.session_count() == 0) {
    boost::system::error_code ignored;
    signals.cancel(ignored);
    spdlog::info("peernetd stopped: every connection closed");
    return;
  }
  if (std::chrono::steady_clock::now() >= give_up) {
    spdlog::warn("peernetd stopping with {} connections still open after the drain timeout",
                 server.session_count());
    io.stop();
    return;
  }
  timer.expires_after(std::chrono::milliseconds{20});
  timer.async_wait([&, give_up](boost::system::error_code ec) {
    if (!ec) {
      drain(timer, server, signals, io, give_up);
    }
  });
}

}  // namespace

int run(const Config& config) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(config.listen, ec);
  if (ec) {
    spdlog::error("listen: '{}' is not an IP address", config.listen);
    return 1;
  }

  // Declared before the io_context: sessions destroyed with it still drop their watches here.
  core::SystemClock clock;
  core::MemoryRegistry registry(clock, config.registry);

  std::shared_ptr<asio::ssl::context> tls;
  const auto tls_mode = http::parse_tls_mode(config.tls_mode).value_or(http::TlsMode::kOff);
  if (tls_mode != http::TlsMode::kOff) {
    auto setup =
        http::setup_tls(config.tls_certificate, config.tls_private_key, config.state_directory);
    if (!setup) {
      spdlog::error("TLS: {}", setup.error().message);
      return 1;
    }
    spdlog::info("TLS {} with {} certificate {}; SHA-256 fingerprint {}", config.tls_mode,
                 setup->generated ? "a newly generated self-signed" : "the",
                 setup->certificate_path, setup->fingerprint);
    tls = std::move(setup->context);
  }

  const unsigned threads =
      config.threads != 0 ? config.threads : std::max(1U, std::thread::hardware_concurrency());
  asio::io_context io(static_cast<int>(threads));
  http::HttpServer server(io, registry, config.http, tls_mode, std::move(tls));
  ExpiryTimer expiry(io, registry, clock);

  ec = server.listen(tcp::endpoint(address, config.port));
  if (ec && address.is_v6() && address.to_v6().is_unspecified()) {
    spdlog::info("IPv6 unavailable ({}); listening on IPv4 only", ec.message());
    ec = server.listen(tcp::endpoint(asio::ip::address_v4::any(), config.port));
  }
  if (ec) {
    spdlog::error("cannot listen on [{}]:{}: {}", config.listen, config.port, ec.message());
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(io);
  signals.async_wait([&](boost::system::error_code error, int signal) {
    if (error) {
      return;
    }
    spdlog::info("peernetd stopping on signal {}: draining {} connections", signal,
                 server.session_count());
    sd_notify(0, "STOPPING=1");
    server.stop();
    expiry.stop();
    // A second signal stops at once.
    signals.async_wait([&](boost::system::error_code again, int) {
      if (!again) {
        spdlog::warn("second signal: stopping without draining");
        io.stop();
      }
    });
    drain(drain_timer, server, signals, io,
          std::chrono::steady_clock::now() + config.drain_timeout);
  });

  // Written only once the signal handlers are in place: whoever reads the port may signal at once.
  if (!config.port_file.empty() && !write_port_file(config.port_file, server.port())) {
    spdlog::error("cannot write the port file {}", config.port_file);
    return 1;
  }

  server.start();
  expiry.start();
  spdlog::info("peernetd {} listening on [{}]:{} with {} threads; default room '{}'", kVersion,
               config.listen, server.port(), threads, config.registry.default_room);
  sd_notify(0, "READY=1");

  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) {
    workers.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& worker : workers) {
    worker.join();
  }
  return 0;
}

}  // namespace peernet::daemon
