#include "modules/auth/local_authorizer.h"

#include <system_error>
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
  std::error_code error;
  Stamp stamp;
  stamp.mtime = std::filesystem::last_write_time(*path_, error);
  if (error) return std::nullopt;
  stamp.size = std::filesystem::file_size(*path_, error);
  if (error) return std::nullopt;
  return stamp;
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
