#include "kernel/master/authentication_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace tessera::kernel::master {

namespace {

// The SHA-256 of `text` (32 bytes); empty if OpenSSL failed, which the callers treat as "not
// remembered".
std::string digestOf(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace

AuthenticationCache::AuthenticationCache(std::chrono::milliseconds ttl, size_t capacity)
    : ttl_(ttl), capacity_(std::max<size_t>(capacity, 1)) {}

bool AuthenticationCache::cacheable(std::string_view authorization) {
  constexpr std::string_view kScheme = "basic ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  return true;
}

std::optional<std::string> AuthenticationCache::find(std::string_view authorization,
                                                     uint64_t generation, Clock::time_point now) {
  if (entries_.empty() || !cacheable(authorization)) return std::nullopt;
  const std::string key = digestOf(authorization);
  if (key.empty()) return std::nullopt;
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.generation != generation || now >= it->second.expires) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.principal;
}

void AuthenticationCache::remember(std::string_view authorization, std::string principal,
                                   uint64_t generation, Clock::time_point now) {
  if (ttl_.count() <= 0 || !cacheable(authorization)) return;
  std::string key = digestOf(authorization);
  if (key.empty()) return;
  if (entries_.size() >= capacity_ && entries_.find(key) == entries_.end()) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.generation != generation || now >= it->second.expires ? entries_.erase(it)
                                                                            : std::next(it);
    }
    if (entries_.size() >= capacity_) {
      entries_.erase(std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
        return a.second.expires < b.second.expires;
      }));
    }
  }
  entries_[std::move(key)] = Entry{std::move(principal), generation, now + ttl_};
}

}  // namespace tessera::kernel::master
