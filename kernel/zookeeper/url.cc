#include "kernel/zookeeper/url.h"

#include <fstream>
#include <sstream>

#include "kernel/runtime/strings.h"

namespace tessera::kernel::zookeeper {

namespace {

using runtime::trim;

api::Status checkServer(std::string_view url, std::string_view server) {
  if (server.empty()) return api::invalidArgument("'{}' has an empty server", url);
  auto colon = server.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return api::invalidArgument("'{}': server '{}' is not host:port", url, server);
  }
  auto port = server.substr(colon + 1);
  if (port.empty() || port.size() > 5) {
    return api::invalidArgument("'{}': server '{}' has a bad port", url, server);
  }
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') {
      return api::invalidArgument("'{}': server '{}' has a bad port", url, server);
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return api::invalidArgument("'{}': server '{}' has a bad port", url, server);
  }
  return api::Status::ok();
}

}  // namespace

bool isZkUrl(std::string_view text) {
  return text.rfind("zk://", 0) == 0 || text.rfind("file://", 0) == 0;
}

std::string ZkUrl::toString() const {
  std::string auth;
  if (credentials) {
    auth = credentials->substr(0, credentials->find(':')) + ":*****@";
  }
  return "zk://" + auth + servers + path;
}

api::Result<ZkUrl> parseZkUrl(std::string_view text) {
  text = trim(text);
  if (text.rfind("file://", 0) == 0) {
    std::string file(text.substr(7));
    std::ifstream in(file);
    if (!in) return api::invalidArgument("cannot read ZooKeeper URL file '{}'", file);
    std::stringstream content;
    content << in.rdbuf();
    std::string inner = content.str();
    if (isZkUrl(trim(inner)) && trim(inner).rfind("file://", 0) == 0) {
      return api::invalidArgument("ZooKeeper URL file '{}' names another file", file);
    }
    auto parsed = parseZkUrl(inner);
    if (!parsed) return parsed.status().withContext("in file '{}'", file);
    return parsed;
  }
  if (text.rfind("zk://", 0) != 0) {
    return api::invalidArgument(
        "'{}' is not a ZooKeeper URL (zk://host:port,.../path or "
        "file:///path)",
        text);
  }
  std::string_view rest = text.substr(5);
  ZkUrl url;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return api::invalidArgument("'{}' has no path (zk://host:port/path)", text);
  }
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = rest.substr(slash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto credentials = authority.substr(0, at);
    auto colon = credentials.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return api::invalidArgument("'{}': credentials must be user:password", text);
    }
    url.credentials = std::string(credentials);
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return api::invalidArgument("'{}' names no servers", text);
  std::string_view servers = authority;
  while (true) {
    auto comma = servers.find(',');
    if (auto status = checkServer(text, servers.substr(0, comma)); !status) return status;
    if (comma == std::string_view::npos) break;
    servers.remove_prefix(comma + 1);
  }
  url.servers = std::string(authority);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/")
    return api::invalidArgument("'{}' needs a path below '/' (zk://.../tessera)", text);
  if (path.find("//") != std::string_view::npos) {
    return api::invalidArgument("'{}' has an empty path segment", text);
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return api::invalidArgument("'{}': the path must be printable ASCII without spaces", text);
    }
  }
  url.path = std::string(path);
  return url;
}

}  // namespace tessera::kernel::zookeeper
