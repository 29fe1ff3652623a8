#include "modules/auth/hmac_authenticator.h"

#include <Poco/DigestEngine.h>
#include <Poco/HMACEngine.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/SHA2Engine.h>

#include <fstream>
#include <sstream>
#include <utility>

namespace tessera::modules::auth {

namespace {

// Poco's HMACEngine wants the block and digest sizes as constants of its engine type.
class Sha256 : public Poco::SHA2Engine {
 public:
  enum { BLOCK_SIZE = 64, DIGEST_SIZE = 32 };
  Sha256() : Poco::SHA2Engine(Poco::SHA2Engine::SHA_256) {}
};

api::Result<std::string> readValue(std::string_view flag) {
  std::string_view trimmed = flag;
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\n')) {
    trimmed.remove_prefix(1);
  }
  if (!trimmed.empty() && trimmed.front() == '{') return std::string(trimmed);
  const std::string path = credentialsPath(flag);
  std::ifstream in(path);
  if (!in) return api::notFound("cannot read credential file '{}'", path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string hmacResponse(std::string_view principal, std::string_view secret,
                         std::string_view challenge) {
  Poco::HMACEngine<Sha256> hmac{std::string(secret)};
  hmac.update(kHmacMechanism.data(), static_cast<unsigned>(kHmacMechanism.size()));
  hmac.update('\0');
  hmac.update(principal.data(), static_cast<unsigned>(principal.size()));
  hmac.update('\0');
  hmac.update(challenge.data(), static_cast<unsigned>(challenge.size()));
  return Poco::DigestEngine::digestToHex(hmac.digest());
}

api::Result<std::pair<std::string, std::string>> parseCredential(std::string_view text) {
  std::string_view body = text;
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) {
    body.remove_prefix(1);
  }
  if (!body.empty() && body.front() == '{' && body.find("\"credentials\"") == std::string::npos) {
    Poco::JSON::Object::Ptr object;
    try {
      object = Poco::JSON::Parser().parse(std::string(body)).extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception&) {
      return api::invalidArgument("the credential is not valid JSON");
    }
    if (object.isNull()) return api::invalidArgument("the credential is not a JSON object");
    auto principal = object->get("principal");
    auto secret = object->get("secret");
    if (!principal.isString() || principal.extract<std::string>().empty()) {
      return api::invalidArgument("the credential has no string 'principal'");
    }
    if (!secret.isString()) return api::invalidArgument("the credential has no string 'secret'");
    return std::make_pair(principal.extract<std::string>(), secret.extract<std::string>());
  }
  auto all = parseCredentials(text);
  if (!all) return all.status();
  if (all->size() != 1) {
    return api::invalidArgument("a credential names exactly one principal, not {}", all->size());
  }
  return std::make_pair(all->begin()->first, all->begin()->second);
}

HmacAuthenticator::HmacAuthenticator(api::Context* context,
                                     std::unique_ptr<CredentialsFile> credentials,
                                     std::optional<std::pair<std::string, std::string>> own)
    : context_(context), credentials_(std::move(credentials)), own_(std::move(own)) {}

api::Result<std::unique_ptr<api::Module>> HmacAuthenticator::create(
    const api::Parameters& parameters, api::Context& context) {
  const std::string credentials = parameters.getOr("credentials", "");
  const std::string credential = parameters.getOr("credential", "");
  if (credentials.empty() && credential.empty()) {
    return api::invalidArgument(
        "parameter 'credentials' (to verify peers: --credentials) or 'credential' (to "
        "authenticate: --credential) is required");
  }
  std::unique_ptr<CredentialsFile> file;
  if (!credentials.empty()) {
    auto opened = CredentialsFile::fromFlag(credentials);
    if (!opened) return opened.status();
    file = std::move(opened).value();
  }
  std::optional<std::pair<std::string, std::string>> own;
  if (!credential.empty()) {
    auto text = readValue(credential);
    if (!text) return text.status();
    auto parsed = parseCredential(*text);
    if (!parsed) return parsed.status().withContext("flag '--credential'");
    own = std::move(parsed).value();
  }
  return std::unique_ptr<api::Module>(
      std::make_unique<HmacAuthenticator>(&context, std::move(file), std::move(own)));
}

void HmacAuthenticator::count(std::string_view name) {
  if (context_ != nullptr) {
    context_->metrics().counter(std::string("authenticator/hmac/").append(name)).increment();
  }
}

api::Status HmacAuthenticator::reload() {
  if (!credentials_) return api::Status::ok();
  if (auto refused = credentials_->refresh(true)) {
    count("reload_failures");
    return api::invalidArgument("keeping the credentials loaded before: {}", *refused);
  }
  return api::Status::ok();
}

void HmacAuthenticator::authenticate(const api::HttpRequest&,
                                     std::function<void(api::AuthenticationResult)> done) {
  done(api::AuthenticationResult{});
}

std::optional<std::string> HmacAuthenticator::principal() const {
  if (!own_) return std::nullopt;
  return own_->first;
}

api::Result<std::string> HmacAuthenticator::respond(std::string_view challenge) const {
  if (!own_) {
    return api::Status(api::StatusCode::kFailedPrecondition,
                       "no credential to authenticate with (--credential)");
  }
  return hmacResponse(own_->first, own_->second, challenge);
}

bool HmacAuthenticator::verifyNow(const api::PeerAuthentication& attempt) {
  if (!credentials_) return false;
  if (auto refused = credentials_->refresh()) {
    if (context_ != nullptr) {
      context_->logger().warning("keeping the credentials loaded before: {}", *refused);
    }
    count("reload_failures");
  }
  if (attempt.mechanism != kHmacMechanism || attempt.challenge.empty()) return false;
  auto secret = credentials_->secretOf(attempt.principal);
  // An unknown principal costs the same work as a known one.
  const std::string expected =
      hmacResponse(attempt.principal, secret.value_or(std::string()), attempt.challenge);
  return constantTimeEquals(expected, attempt.response) && secret.has_value();
}

void HmacAuthenticator::verify(const api::PeerAuthentication& attempt,
                               std::function<void(api::AuthenticationResult)> done) {
  api::AuthenticationResult result;
  if (verifyNow(attempt)) {
    count("successes");
    result.outcome = api::AuthenticationResult::Outcome::kAuthenticated;
    result.principal = attempt.principal;
  } else {
    count("failures");
  }
  done(std::move(result));
}

}  // namespace tessera::modules::auth
