#include "modules/auth/local_authorizer.h"

#include <sys/stat.h>

#include <utility>

namespace tessera::modules::auth {

api::Result<std::unique_ptr<api::Module>> LocalAuthorizer::create(const api::Parameters& parameters,
                                                                  api::Context& context) {
  std::string flag = parameters.getOr("acls", "");
  if (flag.empty()) return api::invalidArgument("parameter 'acls' is missing (the --acls flag)");
  auto text = readAclsFlag(flag);
  if (!text) return api::invalidArgument("flag '--acls': {}", text.status().message());
  auto acls = parseAcls(*text);
  if (!acls) return api::invalidArgument("flag '--acls': {}", acls.status().message());
  return std::unique_ptr<api::Module>(
      std::make_unique<LocalAuthorizer>(&context, std::move(flag), std::move(acls).value()));
}

LocalAuthorizer::LocalAuthorizer(api::Context* context, std::string flag, Acls acls)
    : context_(context), path_(aclsPath(flag)), acls_(std::move(acls)) {
  stamp_ = stampOf();
}

std::optional<LocalAuthorizer::Stamp> LocalAuthorizer::stampOf() const {
  if (!path_) return std::nullopt;
  struct stat info {};
  if (::stat(path_->c_str(), &info) != 0) return std::nullopt;
  Stamp stamp;
  stamp.mtimeNs = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  stamp.size = static_cast<int64_t>(info.st_size);
  stamp.inode = static_cast<uint64_t>(info.st_ino);
  return stamp;
}

api::Status LocalAuthorizer::reload() {
  if (!path_) return api::Status::ok();  // inline ACLs: nothing to re-read
  stamp_ = Stamp{-1, -1, 0};             // no file has this stamp: read it whatever it is now
  if (reloadIfChanged()) return api::Status::ok();
  return api::invalidArgument("keeping the ACLs in force: reloading '{}' failed", *path_);
}

bool LocalAuthorizer::reloadIfChanged() {
  if (!path_) return false;
  auto stamp = stampOf();
  if (stamp == stamp_) return false;
  stamp_ = stamp;
  auto text = readAclsFlag(*path_);
  auto acls = text ? parseAcls(*text) : api::Result<Acls>(text.status());
  if (!acls) {
    if (context_ != nullptr) {
      context_->logger().warning("keeping the ACLs in force: reloading '{}' failed: {}", *path_,
                                 acls.status().message());
      context_->metrics().counter("authorizer/acls_reload_failures").increment();
    }
    return false;
  }
  acls_ = std::move(acls).value();
  if (context_ != nullptr) {
    context_->logger().info("reloaded the ACLs from '{}'", *path_);
    context_->metrics().counter("authorizer/acls_reloads").increment();
  }
  return true;
}

bool LocalAuthorizer::decide(const api::AuthorizationRequest& request) {
  reloadIfChanged();
  return isAllowed(acls_, request);
}

void LocalAuthorizer::authorized(const api::AuthorizationRequest& request,
                                 std::function<void(api::Result<bool>)> done) {
  done(decide(request));
}

}  // namespace tessera::modules::auth
