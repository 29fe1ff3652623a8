// A test authenticator module (kind "authenticator"): HTTP Basic against a fixed list of
// credentials, like Mesos's `basic` HTTP authenticator with --credentials.
//
// Parameters: credentials, "principal:secret" entries separated by commas or newlines;
// realm (default "tessera"), used in the challenge `Basic realm="<realm>"`.
// Test hook: a request with `X-Test-Authentication-Delay-Ms: N` is answered N ms later, from a
// timer on the module's executor (the master must cope with a slow authenticator, and with
// stopping meanwhile).
// Parameter credentials_file: a file of the same entries, read at creation and on reload()
// (instead of `credentials`). Counts every request in `test_authenticator/requests`.
#include <boost/dll/alias.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/authenticator.h"
#include "tessera/api/module.h"

namespace {

using tessera::api::AuthenticationResult;
using tessera::api::Context;
using tessera::api::Module;
using tessera::api::Parameters;
using tessera::api::Result;

// Strict standard base64 (RFC 4648 §4, padding required): a module cannot use the kernel's.
std::optional<std::string> decodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int padding = 0;
    uint32_t bits = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=') {
        // Only at the end, only in the last two places, and nothing but '=' after it.
        if (!last || j < 2) return std::nullopt;
        ++padding;
        bits <<= 6;
        continue;
      }
      int v = value(c);
      if (v < 0 || padding > 0) return std::nullopt;
      bits = (bits << 6) | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<char>((bits >> 16) & 0xff));
    if (padding < 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

class BasicAuthenticator final : public tessera::api::Authenticator {
 public:
  BasicAuthenticator(Context& context, std::map<std::string, std::string> secrets,
                     const std::string& realm, std::string file)
      : context_(context),
        secrets_(std::move(secrets)),
        challenge_(std::string("Basic realm=\"").append(realm).append("\"")),
        file_(std::move(file)) {}

  static Result<std::unique_ptr<Module>> create(const Parameters& parameters, Context& context) {
    std::string file = parameters.getOr("credentials_file", "");
    auto secrets = file.empty() ? parse(parameters.getOr("credentials", "")) : read(file);
    if (!secrets) return secrets.status();
    return std::unique_ptr<Module>(std::make_unique<BasicAuthenticator>(
        context, std::move(secrets).value(), parameters.getOr("realm", "tessera"),
        std::move(file)));
  }

  tessera::api::Status reload() override {
    if (file_.empty()) return tessera::api::Status::ok();
    auto secrets = read(file_);
    if (!secrets) return secrets.status();
    secrets_ = std::move(secrets).value();
    return tessera::api::Status::ok();
  }

  static Result<std::map<std::string, std::string>> read(const std::string& file) {
    std::ifstream in(file);
    if (!in) return tessera::api::invalidArgument("parameter 'credentials_file': cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    return parse(text.str());
  }

  static Result<std::map<std::string, std::string>> parse(const std::string& text) {
    std::map<std::string, std::string> secrets;
    std::string_view list = text;
    while (!list.empty()) {
      size_t end = list.find_first_of(",\n");
      std::string_view entry = list.substr(0, end);
      list = end == std::string_view::npos ? std::string_view() : list.substr(end + 1);
      while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
      while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
      if (entry.empty()) continue;
      size_t colon = entry.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        return tessera::api::invalidArgument(
            "parameter 'credentials': '{}' is not 'principal:secret'", entry);
      }
      secrets[std::string(entry.substr(0, colon))] = std::string(entry.substr(colon + 1));
    }
    return secrets;
  }

  // Drops the delayed answers (their callbacks into the kernel) as a module must.
  void stop() override {
    for (auto& timer : timers_) timer->cancel();
    timers_.clear();
  }

  std::string scheme() const override { return "Basic"; }

  void authenticate(const tessera::api::HttpRequest& request,
                    std::function<void(AuthenticationResult)> done) override {
    context_.metrics().counter("test_authenticator/requests").increment();
    AuthenticationResult result;
    result.outcome = AuthenticationResult::Outcome::kUnauthorized;
    result.challenge = challenge_;
    if (auto principal = check(request.header("Authorization"))) {
      result.outcome = AuthenticationResult::Outcome::kAuthenticated;
      result.principal = std::move(principal);
      result.challenge.clear();
    }
    if (auto delay = request.header("X-Test-Authentication-Delay-Ms")) {
      timers_.push_back(context_.executor().schedule(
          std::chrono::milliseconds(std::stoi(*delay)),
          [done = std::move(done), result = std::move(result)]() mutable {
            done(std::move(result));
          }));
      return;
    }
    done(std::move(result));
  }

 private:
  // The principal `authorization` proves, if it does.
  std::optional<std::string> check(const std::optional<std::string>& authorization) const {
    if (!authorization) return std::nullopt;
    std::string_view value = *authorization;
    constexpr std::string_view kPrefix = "Basic ";
    if (value.size() <= kPrefix.size()) return std::nullopt;
    // The scheme is case-insensitive (RFC 7235).
    for (size_t i = 0; i < kPrefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(value[i])) !=
          std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
        return std::nullopt;
      }
    }
    auto decoded = decodeBase64(value.substr(kPrefix.size()));
    if (!decoded) return std::nullopt;
    size_t colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string principal = decoded->substr(0, colon);
    auto known = secrets_.find(principal);
    if (known == secrets_.end() || known->second != decoded->substr(colon + 1)) {
      return std::nullopt;
    }
    return principal;
  }

  Context& context_;
  std::map<std::string, std::string> secrets_;
  const std::string challenge_;
  const std::string file_;  // credentials_file; empty: the fixed `credentials`
  std::vector<std::unique_ptr<tessera::api::TimerHandle>> timers_;
};

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "authenticator",
    "org_tessera_test_basic_authenticator",
    "HTTP Basic against the 'credentials' parameter (a test authenticator)",
    "Tessera",
    &tessera::api::guardedFactory<&BasicAuthenticator::create>};

}  // namespace

BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
