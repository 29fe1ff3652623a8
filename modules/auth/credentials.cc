#include "modules/auth/credentials.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

namespace tessera::modules::auth {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

api::Result<CredentialMap> parseJson(std::string_view text) {
  Poco::Dynamic::Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(std::string(text));
  } catch (const Poco::Exception&) {
    // Poco's message may quote the text, secrets included: say only where it went wrong.
    return api::invalidArgument("credentials are not valid JSON");
  }
  auto object = parsed.extract<Poco::JSON::Object::Ptr>();
  if (object.isNull() || !object->has("credentials")) {
    return api::invalidArgument("credentials JSON has no 'credentials' array");
  }
  auto list = object->getArray("credentials");
  if (list.isNull()) return api::invalidArgument("'credentials' is not an array");
  CredentialMap credentials;
  for (size_t i = 0; i < list->size(); ++i) {
    auto entry = list->getObject(static_cast<unsigned>(i));
    if (entry.isNull()) return api::invalidArgument("credentials[{}] is not an object", i);
    auto principal = entry->get("principal");
    auto secret = entry->get("secret");
    if (!principal.isString() || principal.extract<std::string>().empty()) {
      return api::invalidArgument("credentials[{}] has no string 'principal'", i);
    }
    if (!secret.isString()) {
      return api::invalidArgument("credentials[{}] (principal '{}') has no string 'secret'", i,
                                  principal.extract<std::string>());
    }
    credentials[principal.extract<std::string>()] = secret.extract<std::string>();
  }
  return credentials;
}

}  // namespace

bool constantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return difference == 0;
}

api::Result<CredentialMap> parseCredentials(std::string_view text) {
  std::string_view body = trim(text);
  while (!body.empty() && (body.front() == '\n')) body = trim(body.substr(1));
  if (!body.empty() && body.front() == '{') return parseJson(body);
  CredentialMap credentials;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    size_t end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t space = line.find_first_of(" \t");
    if (space == std::string_view::npos) {
      return api::invalidArgument("credentials line {} is not 'principal secret'", number);
    }
    std::string_view principal = line.substr(0, space);
    std::string_view secret = trim(line.substr(space + 1));
    if (secret.empty() || secret.find_first_of(" \t") != std::string_view::npos) {
      return api::invalidArgument("credentials line {} (principal '{}') is not 'principal secret'",
                                  number, principal);
    }
    credentials[std::string(principal)] = std::string(secret);
  }
  return credentials;
}

std::string credentialsPath(std::string_view flag) {
  constexpr std::string_view kScheme = "file://";
  if (flag.substr(0, kScheme.size()) == kScheme) flag.remove_prefix(kScheme.size());
  return std::string(flag);
}

CredentialsFile::CredentialsFile(std::string path, std::chrono::milliseconds interval)
    : path_(std::move(path)), interval_(interval) {}

api::Result<std::unique_ptr<CredentialsFile>> CredentialsFile::open(
    std::string path, std::chrono::milliseconds interval) {
  auto file = std::unique_ptr<CredentialsFile>(new CredentialsFile(std::move(path), interval));
  if (api::Status loaded = file->load(true); !loaded) return loaded;
  return file;
}

api::Result<std::unique_ptr<CredentialsFile>> CredentialsFile::fromFlag(
    std::string_view flag, std::chrono::milliseconds interval) {
  std::string_view body = trim(flag);
  while (!body.empty() && body.front() == '\n') body = trim(body.substr(1));
  if (body.empty() || body.front() != '{') return open(credentialsPath(flag), interval);
  auto parsed = parseCredentials(body);
  if (!parsed) return parsed.status().withContext("the inline credentials");
  auto file = std::unique_ptr<CredentialsFile>(new CredentialsFile(std::string(), interval));
  file->credentials_ = std::make_shared<const CredentialMap>(std::move(parsed).value());
  return file;
}

api::Status CredentialsFile::load(bool initial) {
  if (path_.empty()) return api::Status::ok();  // inline: nothing to re-read
  struct stat info {};
  if (::stat(path_.c_str(), &info) != 0) {
    return api::notFound("cannot read credentials file '{}'", path_);
  }
  int64_t mtime = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  int64_t size = static_cast<int64_t>(info.st_size);
  uint64_t inode = static_cast<uint64_t>(info.st_ino);
  {
    std::lock_guard lock(mutex_);
    if (!initial && mtime == mtimeNs_ && size == size_ && inode == inode_) {
      return api::Status::ok();
    }
  }
  std::ifstream in(path_);
  if (!in) return api::notFound("cannot read credentials file '{}'", path_);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parseCredentials(text.str());
  std::lock_guard lock(mutex_);
  // Remember this version either way: a broken file is reported once, not on every look.
  mtimeNs_ = mtime;
  size_ = size;
  inode_ = inode;
  if (!parsed) {
    return parsed.status().withContext("credentials file '{}'", path_);
  }
  credentials_ = std::make_shared<const CredentialMap>(std::move(parsed).value());
  if (!initial) ++reloads_;
  return api::Status::ok();
}

std::optional<std::string> CredentialsFile::refresh(bool force) {
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    if (!force && now - lastLook_ < interval_) return std::nullopt;
    lastLook_ = now;
  }
  api::Status loaded = load(false);
  if (!loaded) return loaded.message();
  return std::nullopt;
}

bool CredentialsFile::check(std::string_view principal, std::string_view secret) {
  std::shared_ptr<const CredentialMap> credentials;
  {
    std::lock_guard lock(mutex_);
    credentials = credentials_;
  }
  auto found = credentials->find(principal);
  if (found == credentials->end()) {
    constantTimeEquals(secret, secret);  // about the same work as a known principal
    return false;
  }
  return constantTimeEquals(found->second, secret);
}

std::optional<std::string> CredentialsFile::secretOf(std::string_view principal) {
  std::lock_guard lock(mutex_);
  auto found = credentials_->find(principal);
  if (found == credentials_->end()) return std::nullopt;
  return found->second;
}

size_t CredentialsFile::reloads() const {
  std::lock_guard lock(mutex_);
  return reloads_;
}

}  // namespace tessera::modules::auth
