#include "http/tls.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include <boost/asio/ip/host_name.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace peernet::http {
namespace {

namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;
using core::ApiError;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(std::FILE* p) const { std::fclose(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

ApiError failure(std::string what) {
  const auto code = ERR_get_error();
  if (code != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    what += fmt::format(" ({})", text.data());
  }
  return ApiError{core::ErrorCode::kInternal, std::move(what)};
}

std::string fingerprint_of(X509* certificate) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  X509_digest(certificate, EVP_sha256(), digest.data(), &size);
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += fmt::format("{}{:02X}", i == 0 ? "" : ":", digest[i]);
  }
  return out;
}

/// Opens a new file only the daemon's user can read; fails when it exists.
Owned<std::FILE> create_private(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return nullptr;
  }
  return Owned<std::FILE>(::fdopen(fd, "w"));
}

core::Status generate(const fs::path& certificate_path, const fs::path& key_path) {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Owned<X509> cert(X509_new());
  if (!key || !cert) {
    return failure("cannot make a key pair");
  }
  std::uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1U);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  auto* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("peernetd"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);

  boost::system::error_code ec;
  const auto host = boost::asio::ip::host_name(ec);
  std::string names = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (!ec && !host.empty() && host.find_first_of(",:") == std::string::npos) {
    names += fmt::format(",DNS:{0},DNS:{0}.local", host);
  }
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
  Owned<X509_EXTENSION> san(
      X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, names.c_str()));
  if (!san || X509_add_ext(cert.get(), san.get(), -1) != 1 ||
      X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return failure("cannot sign the certificate");
  }

  auto key_file = create_private(key_path);
  if (!key_file ||
      PEM_write_PrivateKey(key_file.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return failure(fmt::format("cannot write {}", key_path.string()));
  }
  auto cert_file = create_private(certificate_path);
  if (!cert_file || PEM_write_X509(cert_file.get(), cert.get()) != 1) {
    return failure(fmt::format("cannot write {}", certificate_path.string()));
  }
  return core::ok_status();
}

}  // namespace

std::optional<TlsMode> parse_tls_mode(std::string_view text) {
  if (text == "off") {
    return TlsMode::kOff;
  }
  if (text == "optional") {
    return TlsMode::kOptional;
  }
  if (text == "required") {
    return TlsMode::kRequired;
  }
  return std::nullopt;
}

core::Result<TlsSetup> setup_tls(const std::string& certificate, const std::string& private_key,
                                 const std::string& state_directory) {
  TlsSetup setup;
  fs::path cert_path = certificate;
  fs::path key_path = private_key;
  if (certificate.empty() != private_key.empty()) {
    return ApiError{core::ErrorCode::kInvalidValue,
                    "tls_certificate and tls_private_key go together: set both or neither"};
  }
  if (certificate.empty()) {
    const fs::path dir = fs::path(state_directory) / "tls";
    cert_path = dir / "peernetd.crt";
    key_path = dir / "peernetd.key";
    std::error_code ec;
    if (!fs::exists(cert_path, ec) || !fs::exists(key_path, ec)) {
      fs::create_directories(dir, ec);
      if (ec) {
        return ApiError{core::ErrorCode::kInternal,
                        fmt::format("cannot create {} for the generated certificate: {} "
                                    "(set state_directory, or tls_certificate and tls_private_key)",
                                    dir.string(), ec.message())};
      }
      fs::permissions(dir, fs::perms::owner_all, ec);
      fs::remove(cert_path, ec);
      fs::remove(key_path, ec);
      if (auto s = generate(cert_path, key_path); !s) {
        return std::move(s).error();
      }
      setup.generated = true;
    }
  }

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                       ssl::context::single_dh_use);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_path.string(), ec);
  if (ec) {
    return ApiError{
        core::ErrorCode::kInvalidValue,
        fmt::format("tls_certificate: cannot load {}: {}", cert_path.string(), ec.message())};
  }
  context->use_private_key_file(key_path.string(), ssl::context::pem, ec);
  if (ec) {
    return ApiError{
        core::ErrorCode::kInvalidValue,
        fmt::format("tls_private_key: cannot load {}: {}", key_path.string(), ec.message())};
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return ApiError{core::ErrorCode::kInvalidValue,
                    "tls_private_key: it does not belong to the certificate"};
  }
  setup.fingerprint = fingerprint_of(SSL_CTX_get0_certificate(context->native_handle()));
  setup.certificate_path = cert_path.string();
  setup.context = std::move(context);
  return setup;
}

}  // namespace peernet::http
