#include "kernel/state/keys.h"

#include "tessera/api/state_store.h"

namespace tessera::kernel::state {

api::Status validateKey(std::string_view key, bool allowRoot) {
  if (key.empty() || key.front() != '/') {
    return api::invalidArgument("state key '{}' does not start with '/'", key);
  }
  if (key.size() > api::kMaxStateKeyBytes) {
    return api::invalidArgument("state key '{}' is longer than {} bytes", key.substr(0, 64),
                                api::kMaxStateKeyBytes);
  }
  for (char c : key) {
    if (c < 0x20 || c > 0x7e) {
      return api::invalidArgument("state key '{}' has a byte that is not printable ASCII",
                                  key.substr(0, 64));
    }
  }
  if (key == "/") {
    if (allowRoot) return api::Status::ok();
    return api::invalidArgument("state key '/' (the root) holds no value");
  }
  // Every segment: the text after each '/', up to the next one.
  size_t start = 1;
  while (true) {
    size_t end = key.find('/', start);
    std::string_view segment =
        key.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (segment.empty()) return api::invalidArgument("state key '{}' has an empty segment", key);
    if (segment == "." || segment == "..") {
      return api::invalidArgument("state key '{}' has a '{}' segment", key, segment);
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return api::Status::ok();
}

std::string_view childUnder(std::string_view prefix, std::string_view key) {
  // Below the root every key qualifies; below "/a" only "/a/...".
  size_t base = prefix == "/" ? 1 : prefix.size() + 1;
  if (prefix != "/") {
    if (key.size() <= base || key.compare(0, prefix.size(), prefix) != 0 ||
        key[prefix.size()] != '/') {
      return {};
    }
  }
  if (key.size() <= base) return {};
  std::string_view rest = key.substr(base);
  return rest.substr(0, rest.find('/'));
}

api::Status versionMismatch(std::string_view key, uint64_t expected, uint64_t found) {
  return api::makeStatus(api::StatusCode::kAborted,
                         "state key '{}' is at version {}, not the expected {}", key, found,
                         expected);
}

}  // namespace tessera::kernel::state
