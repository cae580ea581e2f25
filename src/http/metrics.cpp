#include "http/metrics.h"

#include <fmt/format.h>

namespace peernet::http {

void Metrics::record(std::size_t method_index, unsigned status) {
  std::size_t column = kStatuses.size();
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    if (kStatuses[i] == status) {
      column = i;
    }
  }
  requests_.at(std::min(method_index, kMethodCount))
      .at(column)
      .fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const core::RegistryStats& stats) const {
  std::string out;
  auto line = [&out](std::string_view text) {
    out += text;
    out += '\n';
  };
  line("# HELP peernetd_requests_total HTTP requests answered, by RPC and status.");
  line("# TYPE peernetd_requests_total counter");
  for (std::size_t m = 0; m <= kMethodCount; ++m) {
    const auto name =
        m == kMethodCount ? std::string_view("unmatched") : method_name(static_cast<Method>(m));
    for (std::size_t c = 0; c <= kStatuses.size(); ++c) {
      const auto n = requests_.at(m).at(c).load(std::memory_order_relaxed);
      if (n == 0) {
        continue;
      }
      const auto code =
          c == kStatuses.size() ? std::string("other") : std::to_string(kStatuses.at(c));
      fmt::format_to(std::back_inserter(out),
                     "peernetd_requests_total{{method=\"{}\",code=\"{}\"}} {}\n", name, code, n);
    }
  }
  auto gauge = [&](std::string_view name, std::string_view help, std::string_view type,
                   auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help,
                   type, value);
  };
  gauge("peernetd_connections", "Open client connections.", "gauge",
        connections_.load(std::memory_order_relaxed));
  gauge("peernetd_connections_accepted_total", "Client connections accepted.", "counter",
        accepted_.load());
  gauge("peernetd_connections_refused_total",
        "Connections closed at once: over max_connections or max_connections_per_client.",
        "counter", refused_.load());
  gauge("peernetd_long_polls", "Requests waiting in a long-poll.", "gauge",
        polls_.load(std::memory_order_relaxed));
  gauge("peernetd_rooms", "Rooms held.", "gauge", stats.rooms);
  gauge("peernetd_servers", "Servers registered.", "gauge", stats.servers);
  gauge("peernetd_knocks", "Knocks held.", "gauge", stats.knocks);
  gauge("peernetd_servers_expired_total", "Servers forgotten for not polling within their TTL.",
        "counter", stats.servers_expired);
  gauge("peernetd_knocks_expired_total", "Knocks that expired unanswered.", "counter",
        stats.knocks_expired);
  return out;
}

}  // namespace peernet::http
