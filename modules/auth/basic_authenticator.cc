#include "modules/auth/basic_authenticator.h"

#include <cctype>
#include <cstdint>
#include <utility>

#include "tessera/api/metrics.h"

namespace tessera::modules::auth {

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
    const bool last = i + 4 == text.size();
    int padding = 0;
    uint32_t bits = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=') {
        if (!last || j < 2) return std::nullopt;
        ++padding;
        bits <<= 6;
        continue;
      }
      const int v = value(c);
      if (v < 0 || padding > 0) return std::nullopt;
      bits = (bits << 6) | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<char>((bits >> 16) & 0xff));
    if (padding < 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> parseBasicAuthorization(std::string_view value) {
  constexpr std::string_view kPrefix = "basic ";
  if (value.size() <= kPrefix.size()) return std::nullopt;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kPrefix[i]) return std::nullopt;
  }
  value.remove_prefix(kPrefix.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  auto decoded = decodeBase64(value);
  if (!decoded) return std::nullopt;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

BasicAuthenticator::BasicAuthenticator(api::Context& context,
                                       std::unique_ptr<CredentialsFile> credentials,
                                       std::string realm)
    : context_(context),
      credentials_(std::move(credentials)),
      challenge_(std::string("Basic realm=\"").append(realm).append("\"")) {}

api::Result<std::unique_ptr<api::Module>> BasicAuthenticator::create(
    const api::Parameters& parameters, api::Context& context) {
  const std::string flag = parameters.getOr("credentials", "");
  if (flag.empty()) {
    return api::invalidArgument(
        "parameter 'credentials' is required (the --credentials file, file:///path or a path)");
  }
  auto file = CredentialsFile::fromFlag(flag);
  if (!file) return file.status();
  return std::unique_ptr<api::Module>(std::make_unique<BasicAuthenticator>(
      context, std::move(file).value(), parameters.getOr("realm", "tessera")));
}

api::AuthenticationResult BasicAuthenticator::authenticateNow(const api::HttpRequest& request) {
  if (auto refused = credentials_->refresh()) {
    context_.logger().warning("keeping the credentials loaded before: {}", *refused);
    context_.metrics().counter("authenticator/basic/reload_failures").increment();
  }
  api::AuthenticationResult result;
  result.outcome = api::AuthenticationResult::Outcome::kUnauthorized;
  result.challenge = challenge_;
  auto authorization = request.header("Authorization");
  if (authorization) {
    if (auto pair = parseBasicAuthorization(*authorization);
        pair && credentials_->check(pair->first, pair->second)) {
      result.outcome = api::AuthenticationResult::Outcome::kAuthenticated;
      result.principal = std::move(pair->first);
      result.challenge.clear();
      context_.metrics().counter("authenticator/basic/successes").increment();
      return result;
    }
    context_.metrics().counter("authenticator/basic/failures").increment();
  }
  return result;
}

api::Status BasicAuthenticator::reload() {
  if (auto refused = credentials_->refresh(true)) {
    context_.metrics().counter("authenticator/basic/reload_failures").increment();
    return api::invalidArgument("keeping the credentials loaded before: {}", *refused);
  }
  return api::Status::ok();
}

void BasicAuthenticator::authenticate(const api::HttpRequest& request,
                                      std::function<void(api::AuthenticationResult)> done) {
  done(authenticateNow(request));
}

}  // namespace tessera::modules::auth
